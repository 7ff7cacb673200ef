"""A robot's read-only image (issue 15): a complete artefact cache in a read-only DEPTH_ATTN_HOME starts
the node (nothing is written, not even a lock file); one that lacks the artefact fails with a clear
message. The folder is made read-only for real: a read-only bind mount in a private mount namespace
where the tests run as root (root ignores file modes), file modes otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

REPO = Path(__file__).resolve().parents[1]
# the node's entry point as the installed executable calls it (``python -m`` would load the module twice)
NODE = [sys.executable, "-c", "import sys; from depth_attn.ros.depth_node import main; sys.exit(main())",
        "--ros-args", "-p", "backend:=onnxruntime", "-r", "__node:=ro_depth_node"]


def read_only_command(home: Path, command: list) -> list:
    if os.geteuid() != 0:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return command
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make a read-only folder")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{home}" "{home}"'],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here (unshare -m: {probe.stderr.strip()})")
    script = f'mount --bind -o ro "{home}" "{home}" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", *command]


def start_node(home: Path, timeout: float = 60.0):
    """(started, output): the node run against ``home`` read-only; stopped with SIGINT once it is up."""
    env = dict(os.environ, DEPTH_ATTN_HOME=str(home), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(read_only_command(home, NODE), cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    deadline = time.monotonic() + timeout
    started = False
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline and process.poll() is None:
        line = process.stdout.readline()
        if line:
            output.append(line)
            if "listening on" in line:
                started = True
                break
        else:
            time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    os.set_blocking(process.stdout.fileno(), True)
    output.append(process.stdout.read())
    return started, process.returncode, "".join(output)


def test_a_read_only_cache_filled_by_export_starts_the_node_and_serves_predict(tmp_path, kitti_annotated):
    """Filled as the node's own error message advises (`depth-attn export`, its defaults), the read-only
    cache holds what the node (weights auto, max_depth 80) and predict (another clamp) look up."""
    from depth_attn.cli import main

    home = tmp_path / "home"
    os.environ["DEPTH_ATTN_HOME"] = str(home)  # (the autouse fixture restores it)
    assert main(["export", "--no-parity"]) == 0
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    for lock in home.rglob(".lock"):
        lock.unlink()  # a shipped image need not carry lock files
    expected = [p for p in before if p.name != ".lock"]
    started, code, output = start_node(home)
    assert started, output
    assert "cannot be written" not in output and "Traceback" not in output, output
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == expected

    image = tmp_path / "frame.png"
    shutil.copyfile(kitti_annotated / "image_02" / "0000000005.png", image)
    predict = [sys.executable, "-c", "import sys; from depth_attn.cli import main; sys.exit(main(sys.argv[1:]))",
               "predict", str(image), "--backend", "onnxruntime",
               "--max-depth", "40", "--out", str(tmp_path / "predict")]
    env = dict(os.environ, DEPTH_ATTN_HOME=str(home))
    done = subprocess.run(read_only_command(home, predict), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "predict" / "depth.npy").is_file()
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == expected


def test_a_read_only_cache_without_the_artefact_fails_clearly(tmp_path):
    home = tmp_path / "empty_home"
    (home / "artefacts").mkdir(parents=True)
    started, code, output = start_node(home)
    assert not started and code == 1, output
    assert "cannot be written" in output and "must be built (not cached yet)" in output, output
    assert "DEPTH_ATTN_HOME" in output and "Traceback" not in output, output
