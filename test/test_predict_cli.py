"""`depth-attn predict` on a real KITTI frame writes what it promises, in metres and in the camera frame."""

from __future__ import annotations

import argparse
import subprocess
import sys

import cv2
import numpy as np
import pytest

from depth_attn.cli import main as cli_main
from depth_attn.geometry import Intrinsics, project_points
from depth_attn.imageio import read_depth_png, read_ply, read_rgb
from depth_attn.metrics import evaluate_depth


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, shared):
    out = tmp_path_factory.mktemp("predict")
    image = shared / "data" / "kitti" / "annotated" / "image_02" / "0000000005.png"
    intrinsics = "721.5377,721.5377,609.5593,172.854"
    assert cli_main(["predict", str(image), "--out", str(out), "--intrinsics", intrinsics]) == 0
    return out, image


def test_outputs_in_metres_at_camera_resolution(predicted, kitti_annotated):
    out, image = predicted
    depth = np.load(out / "depth.npy")
    assert depth.shape == (375, 1242) and depth.dtype == np.float32
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    assert evaluate_depth(depth, gt)["abs_rel"] == pytest.approx(0.0772, abs=0.005)
    png = read_depth_png(out / "depth.png")  # metres x 256
    np.testing.assert_allclose(png, depth, atol=1 / 512 + 1e-6)
    colour = cv2.imread(str(out / "depth_color.png"))
    assert colour.shape[1] == 1242 and colour.shape[0] > 375  # image plus its metres scale


def test_point_cloud_is_xyzrgb_in_optical_frame(predicted):
    out, image = predicted
    depth = np.load(out / "depth.npy")
    cloud = read_ply(out / "points.ply")
    assert cloud.dtype.names == ("x", "y", "z", "red", "green", "blue")
    assert len(cloud) == np.isfinite(depth).sum() == 375 * 1242
    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1).astype(np.float64)
    u, v, z = project_points(xyz, Intrinsics(721.5377, 721.5377, 609.5593, 172.854))
    rows, cols = np.divmod(np.arange(len(cloud)), 1242)
    np.testing.assert_allclose(u, cols, atol=1e-2)
    np.testing.assert_allclose(v, rows, atol=1e-2)
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-6)
    rgb = read_rgb(image).reshape(-1, 3)
    np.testing.assert_array_equal(np.stack([cloud["red"], cloud["green"], cloud["blue"]], -1), rgb)
    # the road (bottom rows) is below the camera: +y; the far middle is ahead: +z
    assert np.median(xyz[rows > 340, 1]) > 1.0


def test_missing_image_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["predict", str(tmp_path / "none.png"), "--out", str(tmp_path)]) == 1
    assert "image not found" in capsys.readouterr().err


def test_every_command_has_help():
    """`depth-attn --help` lists every command, and each command's (and action's) --help explains it."""
    from depth_attn.cli import build_parser

    run = [sys.executable, "-m", "depth_attn", "--help"]
    top = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert len(commands) >= 14
    for name, sub in commands.items():
        assert name in top
        text = sub.format_help()
        assert f"usage: depth-attn {name}" in text and len(text) > 250, name
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):  # weights/cache ACTION
                for action_name, action_parser in action.choices.items():
                    assert len(action_parser.format_help()) > 150, (name, action_name)


def test_a_4_3_camera_through_the_canonical_camera(tmp_path, kitti_annotated, capsys):
    """--intrinsics (numbers or the JSON file) puts the frame through the canonical camera: a 4:3 crop keeps
    its metres (frame 50: 0.074 abs_rel; stretched it is 0.116)."""
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000050.png")
    image = tmp_path / "crop.png"
    cv2.imwrite(str(image), cv2.cvtColor(np.ascontiguousarray(rgb[:, 371:871]), cv2.COLOR_RGB2BGR))
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000050.png")[:, 371:871]
    abs_rel = {}
    for name, extra in (("canonical", []), ("stretch", ["--no-canonical-camera"])):
        out = tmp_path / name
        args = ["predict", str(image), "--out", str(out), "--intrinsics", "721.5377,721.5377,238.5593,172.854"]
        assert cli_main(args + extra) == 0
        abs_rel[name] = evaluate_depth(np.load(out / "depth.npy"), gt)["abs_rel"]
    assert "256x192, padded to the network's 636x192" in capsys.readouterr().out
    assert abs_rel["canonical"] == pytest.approx(0.074, abs=0.004) and abs_rel["stretch"] > 0.11, abs_rel
    out = tmp_path / "json"
    assert cli_main(["predict", str(kitti_annotated / "image_02" / "0000000050.png"), "--out", str(out),
                     "--intrinsics", str(kitti_annotated / "intrinsics.json")]) == 0
    assert "1242x375 resized to the network's 636x192" in capsys.readouterr().out
