"""Checkpoints: real HTTP fetch with checksum check, safe loading, import and listing."""

from __future__ import annotations

import http.server
import pickle
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

from depth_attn import weights
from depth_attn.cli import main as cli_main


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args, **kwargs: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_downloads_and_verifies(http_root, kitti_checkpoint, capsys):
    root, url = http_root
    shutil.copyfile(kitti_checkpoint, root / "build_model_best_kitti_xxs")
    rc = cli_main(["weights", "fetch", "meter-xxs-kitti", "--url", f"{url}/build_model_best_kitti_xxs"])
    assert rc == 0
    landed = weights.cached_path("meter-xxs-kitti")
    assert landed.is_file()
    assert weights.sha256_file(landed) == weights.CHECKPOINTS["meter-xxs-kitti"].sha256
    assert weights.locate("meter-xxs-kitti") == landed  # the cache wins over the shared copy
    assert list(landed.parent.iterdir()) == [landed]  # no partial files left
    assert str(landed) in capsys.readouterr().out


def test_fetch_refuses_tampered_file_and_leaves_nothing(http_root, kitti_checkpoint):
    root, url = http_root
    data = bytearray(kitti_checkpoint.read_bytes())
    data[-100] ^= 0xFF
    (root / "bad").write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="checksum"):
        weights.fetch("meter-xxs-kitti", url=f"{url}/bad", progress=False)
    cache = weights.weights_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_fetch_http_error_leaves_nothing(http_root):
    _, url = http_root
    with pytest.raises(weights.WeightsError, match=r"could not download meter-xxs-kitti .*404.*weights import"):
        weights.fetch("meter-xxs-kitti", url=f"{url}/missing", progress=False)
    cache = weights.weights_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/depth_attn_pwned_marker",))


def test_checkpoint_carrying_code_is_refused_and_not_run(tmp_path):
    marker = Path("/tmp/depth_attn_pwned_marker")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"encoder.conv1.0.depthwise.weight": _RunsCode()}, f)
    with pytest.raises(weights.WeightsError, match="weights-only"):
        weights.load_state_dict(evil)
    assert not marker.exists()
    # the same through the estimator's path: a clear error, no code run
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    with pytest.raises(weights.WeightsError):
        DepthEstimator(EstimatorConfig(weights=str(evil)))
    assert not marker.exists()


def test_torch_save_of_a_module_is_refused(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # a pickled class, not a state dict
    with pytest.raises(weights.WeightsError) as refused:
        weights.load_state_dict(path)
    # what to do instead, never torch's "re-run with weights_only=False" (that would run the file's code)
    assert "weights_only" not in str(refused.value) and "weights import" in str(refused.value)
    assert "Unsupported global" in str(refused.value)


def test_truncated_or_missing_checkpoint_gives_clear_error(tmp_path, kitti_checkpoint):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(kitti_checkpoint.read_bytes()[:5000])
    with pytest.raises(weights.WeightsError, match="cut.pth"):
        weights.load_state_dict(cut)
    with pytest.raises(weights.WeightsError, match="neither a known checkpoint"):
        weights.resolve(str(tmp_path / "nope.pth"))


def test_import_checks_checksum(tmp_path, kitti_checkpoint):
    with pytest.raises(weights.WeightsError, match="checksum"):
        weights.import_file("meter-xxs-nyu", kitti_checkpoint)  # the KITTI file is not the NYU checkpoint
    assert not weights.cached_path("meter-xxs-nyu").exists()
    assert weights.import_file("meter-xxs-kitti", kitti_checkpoint) == weights.cached_path("meter-xxs-kitti")


def test_known_name_with_wrong_checksum_in_cache_is_refused(kitti_checkpoint):
    target = weights.cached_path("meter-xxs-kitti")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(kitti_checkpoint.read_bytes())
    data[200] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="checksum"):
        weights.locate("meter-xxs-kitti")


def test_a_file_path_is_identified_by_checksum(kitti_checkpoint):
    path, info = weights.resolve(str(kitti_checkpoint))
    assert path == kitti_checkpoint and info is not None and info.name == "meter-xxs-kitti"
    assert info.to_metres == 0.1 and info.input_hw == (192, 636)


def test_listing_marks_unverified_and_local(capsys):
    assert cli_main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == set(weights.CHECKPOINTS)
    assert "unverified" in lines["meter-xs-kitti"] and "unverified" in lines["meter-s-nyu"]
    assert "meter_xxs_kitti.pth" in lines["meter-xxs-kitti"]
    assert lines["meter-xs-kitti"].rstrip().endswith("-")  # not on this machine
