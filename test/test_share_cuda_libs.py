"""tools/share_cuda_libs.sh (the Makefile's .venv310 set-up): the CUDA wheels of one venv are hard-linked
into another, so that CI's disk holds one copy; where it cannot or need not, it changes nothing."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from depth_attn.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "tools" / "share_cuda_libs.sh"


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return next((path / "lib").glob("python3*/site-packages"))


def fake_cuda_wheel(site: Path, name: str, library: str) -> Path:
    lib = site / "nvidia" / name / "lib" / library
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"\x7fELF" + bytes(range(256)) * 16)
    info = site / f"nvidia_{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nvidia-{name}\nVersion: 1.2.3\n")
    (info / "RECORD").write_text(f"nvidia/{name}/lib/{library},,\n")
    return lib


def share(src: Path, dst: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(src), str(dst)], capture_output=True, text=True, check=True)


def test_cuda_wheels_are_hard_linked_and_pip_sees_them_installed(tmp_path):
    src_site, dst_site = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    libs = [fake_cuda_wheel(src_site, "cudnn", "libcudnn.so.9"), fake_cuda_wheel(src_site, "cublas", "libcublas.so.13")]
    result = share(tmp_path / "a", tmp_path / "b")
    assert "hard-linked 2 CUDA wheels" in result.stdout
    for lib in libs:
        linked = dst_site / lib.relative_to(src_site)
        assert linked.read_bytes() == lib.read_bytes()
        assert linked.stat().st_ino == lib.stat().st_ino and lib.stat().st_nlink == 2  # one copy on disk
    names = "import importlib.metadata as m; print(sorted(d.metadata['Name'] for d in m.distributions()))"
    listed = subprocess.run([str(tmp_path / "b" / "bin" / "python"), "-c", names],
                            capture_output=True, text=True, check=True).stdout
    assert "nvidia-cudnn" in listed and "nvidia-cublas" in listed


def test_nothing_changes_where_there_is_nothing_to_share(tmp_path):
    make_venv(tmp_path / "a")
    dst_site = make_venv(tmp_path / "b")
    assert share(tmp_path / "a", tmp_path / "b").stdout == ""  # the source has no CUDA wheels
    assert not (dst_site / "nvidia").exists()
    assert share(tmp_path / "missing", tmp_path / "b").stdout == ""  # no source venv (make test-py310 alone)
    own = fake_cuda_wheel(dst_site, "cudnn", "libcudnn.so.9")
    src_site = make_venv(tmp_path / "c")
    fake_cuda_wheel(src_site, "cudnn", "libcudnn.so.9")
    assert share(tmp_path / "c", tmp_path / "b").stdout == ""  # the target has its own already: left as it is
    assert own.stat().st_nlink == 1
