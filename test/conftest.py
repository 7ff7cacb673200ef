"""Shared fixtures: the real frames and checkpoints in ../shared (or $DEPTH_ATTN_SHARED)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depth_attn.paths import data_dir, shared_dir

KITTI_FRAMES = ("0000000005", "0000000050", "0000000100")


SHARED_MISSING = f"the shared folder is missing: {shared_dir()} (set DEPTH_ATTN_SHARED)"


def _shared_present() -> bool:
    return (data_dir() / "kitti").is_dir()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not _shared_present():
        pytest.skip(SHARED_MISSING)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without ../shared (a fresh clone elsewhere), a test that failed because it reads the shared frames
    or checkpoints (its error names the missing folder) is reported as skipped, saying so; every other
    failure stays a failure. With the shared folder present this changes nothing."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and not _shared_present():
        missing = (str(shared_dir()), str(data_dir()))
        if any(m in str(call.excinfo.value) or m in report.longreprtext for m in missing):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: needs {SHARED_MISSING}")


@pytest.fixture(scope="session")
def kitti_annotated(shared) -> Path:
    return data_dir() / "kitti" / "annotated"


@pytest.fixture(scope="session")
def kitti_checkpoint(shared) -> Path:
    return shared / "weights" / "meter" / "meter_xxs_kitti.pth"


@pytest.fixture(scope="session")
def kitti_bag(tmp_path_factory, shared) -> Path:
    """The shared annotated frames and frame 0000000006 (frame 5's image, no ground truth) in the KITTI
    raw layout, written by kitti2bag: one bag for the session (tests that damage it copy it first)."""
    from depth_attn.data.kitti import KittiDrive
    from depth_attn.data.kitti2bag import write_bag
    from depth_attn.data.sample import layout_annotated_drive

    root = tmp_path_factory.mktemp("kitti_bag")
    drive = KittiDrive.open(layout_annotated_drive(root, extra_without_gt=["0000000006"]))
    return write_bag(drive.frames, drive.calib, root / "bag", progress=False).path


@pytest.fixture
def truncated_kitti_bag(kitti_bag, tmp_path) -> Path:
    """A copy of ``kitti_bag`` whose .mcap file lost its last quarter (a recording cut off): that file."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(kitti_bag, damaged)
    mcap = damaged / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.75)])
    return mcap


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache home, so nothing leaks between tests or from the user."""
    monkeypatch.setenv("DEPTH_ATTN_HOME", str(tmp_path_factory.mktemp("depth_attn_home")))


def pytest_configure(config) -> None:
    """ROS 2 tests of parallel runs must not hear each other: a random DDS domain, localhost only."""
    import os
    import random

    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@pytest.fixture(scope="session")
def colcon_workspace(tmp_path_factory) -> Path:
    """One `colcon build` of the package for the session's `ros2 launch` tests (test/launch_harness.py):
    its install folder. Skips, naming why, where ROS 2 launch is not installed."""
    from launch_harness import build_workspace, launch_unavailable

    reason = launch_unavailable()
    if reason:
        pytest.skip(reason)
    return build_workspace(tmp_path_factory.mktemp("launch_ws"))
