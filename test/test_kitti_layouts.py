"""kitti2bag on the two real layouts of the shared data and on the sample the package carries:
drive 0023 in the KITTI raw layout (Velodyne depth PNGs in proj_depth/velodyne_raw, left and right
camera, recorded timestamps) and the 78-frame clip (image_02 + velodyne_points, no timestamps: nominal
10 Hz). Bags are read back with rosbags itself; the clip's ground truth is checked against a
projection of the scan written here from the calibration text files; offline evaluation of
meter-xxs-kitti on the clip must give the abs_rel recorded in docs/benchmarks.md."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from depth_attn.cli import main as cli_main
from depth_attn.data import bags
from depth_attn.data.kitti import KittiDrive, KittiError, read_timestamps
from depth_attn.data.sample import clip_available, clip_calib_dir, clip_dir, sample_drive
from depth_attn.imageio import read_depth_png, read_rgb
from depth_attn.paths import REPO_ROOT, data_dir

TYPES = get_typestore(Stores.ROS2_HUMBLE)
DRIVE_0023 = "raw/2011_09_26/2011_09_26_drive_0023_sync"
GT_TOLERANCE = 1 / 256  # metres: one step of a KITTI depth PNG
NOMINAL_START_NS = 1316995200 * 1_000_000_000  # 2011-09-26 00:00:00 UTC, the calibration folder's date


def read_back(bag):
    """{topic: [(log time, message)]} with rosbags directly (not our reader)."""
    messages = {}
    with Reader(bag) as reader:
        for conn, timestamp, raw in reader.messages():
            messages.setdefault(conn.topic, []).append((timestamp, TYPES.deserialize_cdr(raw, conn.msgtype)))
    return messages


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def depth_of(msg) -> np.ndarray:
    assert msg.encoding == "32FC1"
    return np.frombuffer(msg.data, "<f4").reshape(msg.height, msg.width)


def assert_gt_matches_png(depth: np.ndarray, png_path) -> None:
    png = read_depth_png(png_path)
    assert np.array_equal(np.isfinite(depth), png > 0)
    assert np.abs(depth[png > 0] - png[png > 0]).max() <= GT_TOLERANCE


@pytest.fixture(scope="module")
def kitti(shared):
    path = data_dir() / "kitti"
    if not clip_available(path) or not (path / DRIVE_0023).is_dir():
        pytest.fail(f"the shared KITTI clips are missing under {path}")
    return path


# ------------------------------------------------------------------ drive 0023: raw layout, left + right


def test_drive_0023_left_and_right_with_velodyne_raw_ground_truth(kitti, tmp_path):
    drive = kitti / DRIVE_0023
    bag = tmp_path / "drive23"
    assert cli_main(["kitti2bag", str(drive), "--right", "--out", str(bag)]) == 0  # ground truth found by itself
    messages = read_back(bag)
    stamps = read_timestamps(drive / "image_02" / "timestamps.txt")[:7]
    for image_topic, info_topic, gt_topic, camera in (
        (bags.IMAGE_TOPIC, bags.INFO_TOPIC, bags.GT_TOPIC, "02"),
        (bags.RIGHT_IMAGE_TOPIC, bags.RIGHT_INFO_TOPIC, bags.RIGHT_GT_TOPIC, "03"),
    ):
        for topic in (image_topic, info_topic, gt_topic):
            assert [t for t, _ in messages[topic]] == stamps, topic  # 7 frames, recorded stamps
        for (t, msg), name in zip(messages[gt_topic], [f"{i:010d}" for i in range(7)], strict=True):
            assert stamp_ns(msg) == t
            png = drive / "proj_depth" / "velodyne_raw" / f"image_{camera}" / f"{name}.png"
            assert_gt_matches_png(depth_of(msg), png)
        _, image = messages[image_topic][3]
        rgb = np.frombuffer(image.data, np.uint8).reshape(375, 1242, 3)
        np.testing.assert_array_equal(rgb, read_rgb(drive / f"image_{camera}" / "data" / "0000000003.png"))
    gaps = np.diff(stamps) / 1e9
    assert np.all(np.abs(gaps - 0.1) < 0.01)  # KITTI's real 10 Hz, from timestamps.txt

    left_info, right_info = messages[bags.INFO_TOPIC][0][1], messages[bags.RIGHT_INFO_TOPIC][0][1]
    assert right_info.header.frame_id == bags.RIGHT_CAMERA_FRAME
    baseline = -(right_info.p[3] / right_info.p[0]) + left_info.p[3] / left_info.p[0]
    (_, tf_msg), = messages[bags.TF_STATIC_TOPIC]
    frames = {(t.header.frame_id, t.child_frame_id): t.transform for t in tf_msg.transforms}
    right = frames[(bags.CAMERA_FRAME, bags.RIGHT_CAMERA_FRAME)]
    assert right.translation.x == pytest.approx(baseline, abs=1e-4) and 0.5 < baseline < 0.56  # right is +x
    assert (bags.CAMERA_FRAME, bags.VELO_FRAME) in frames
    assert bags.bag_custom_data(bag)[bags.STAMPS_KEY] == "recorded"
    assert bags.bag_custom_data(bag)[bags.GT_KEY] == "velodyne_raw"


def test_training_reads_drive_0023_as_kitti2bag_does(kitti):
    """Training's kitti_raw source goes through the one drive reader: for the right camera with
    velodyne_raw ground truth, the files it lists are the drive's own (listed here from the folder)
    and its intrinsics are P_rect_03's, read here from the calibration text."""
    from depth_attn.training.data import KittiRawSource

    drive = kitti / DRIVE_0023
    source = KittiRawSource(drive, gt="velodyne_raw", camera=3)
    images = sorted((drive / "image_03" / "data").glob("*.png"))
    assert [f.image for f in source.frames] == images and len(images) == 7
    assert [f.depth_png for f in source.frames] == [drive / "proj_depth" / "velodyne_raw" / "image_03" / p.name
                                                    for p in images]
    line = next(t for t in (drive.parent / "calib_cam_to_cam.txt").read_text().splitlines()
                if t.startswith("P_rect_03:"))
    p = [float(v) for v in line.split(":")[1].split()]
    k = source.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((p[0], p[5], p[2], p[6]))
    assert source.gt_kind == "velodyne_raw" and source.load(0).depth.shape == (375, 1242)


def test_drive_layout_errors_are_clear(kitti, tmp_path):
    drive = kitti / DRIVE_0023
    with pytest.raises(KittiError, match="no annotated ground truth.*groundtruth/image_02"):
        KittiDrive.open(drive, gt="annotated")
    with pytest.raises(KittiError, match="velodyne_points/data is missing"):
        KittiDrive.open(drive, gt="velodyne")
    with pytest.raises(KittiError, match="no calib_cam_to_cam.txt in .*kitti: pass the date folder"):
        KittiDrive.open(clip_dir(kitti))
    with pytest.raises(KittiError, match="no image_02/timestamps.txt: give a frame rate"):
        KittiDrive.open(clip_dir(kitti), clip_calib_dir(kitti))
    assert cli_main(["kitti2bag", str(clip_dir(kitti)), "--out", str(tmp_path / "b")]) == 1


# ------------------------------------------------------------------ the 78-frame clip: nominal 10 Hz, scans


def independent_projection(scan_path, calib_dir, width=1242, height=375) -> np.ndarray:
    """The scan's depth in the rectified left image, from the calibration text files, written here:
    x = P_rect_02 . R_rect_00 . [R|T]_velo_to_cam . X; pixel (round(u) - 1, round(v) - 1), depth the
    camera z, the nearest point per pixel; NaN where none."""

    def values(path):
        out = {}
        for line in path.read_text().splitlines():
            key, _, rest = line.partition(":")
            try:
                out[key] = np.array(rest.split(), dtype=np.float64)
            except ValueError:
                pass
        return out

    cam, velo = values(calib_dir / "calib_cam_to_cam.txt"), values(calib_dir / "calib_velo_to_cam.txt")
    rect = np.eye(4)
    rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    extrinsic = np.eye(4)
    extrinsic[:3, :3], extrinsic[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    points = np.fromfile(scan_path, dtype=np.float32).reshape(-1, 4).astype(np.float64)
    points[:, 3] = 1.0
    projected = (cam["P_rect_02"].reshape(3, 4) @ rect @ extrinsic @ points.T).T
    projected = projected[projected[:, 2] > 0]
    u = np.round(projected[:, 0] / projected[:, 2]).astype(int) - 1
    v = np.round(projected[:, 1] / projected[:, 2]).astype(int) - 1
    depth = np.full((height, width), np.inf)
    for col, row, z in zip(u, v, projected[:, 2], strict=True):
        if 0 <= col < width and 0 <= row < height and z < depth[row, col]:
            depth[row, col] = z
    depth[np.isinf(depth)] = np.nan
    return depth


@pytest.fixture(scope="module")
def clip_bag(kitti, tmp_path_factory):
    bag = tmp_path_factory.mktemp("clip") / "clip_bag"
    assert cli_main(["kitti2bag", str(clip_dir(kitti)), "--calib-dir", str(clip_calib_dir(kitti)), "--rate", "10",
                     "--out", str(bag)]) == 0
    yield bag
    shutil.rmtree(bag, ignore_errors=True)  # 240 MB of raw images


def test_clip_nominal_10hz_with_projected_scans(kitti, clip_bag):
    messages = read_back(clip_bag)
    images, gts = messages[bags.IMAGE_TOPIC], messages[bags.GT_TOPIC]
    assert len(images) == len(gts) == len(messages[bags.INFO_TOPIC]) == 78
    stamps = [t for t, _ in images]
    assert stamps == [NOMINAL_START_NS + i * 100_000_000 for i in range(78)]  # 0.1 s apart from a fixed start
    assert [stamp_ns(m) for _, m in gts] == stamps
    custom = bags.bag_custom_data(clip_bag)
    assert (custom[bags.STAMPS_KEY], custom[bags.RATE_KEY], custom[bags.GT_KEY]) == ("nominal", "10", "velodyne")

    _, image = images[10]
    source = clip_dir(kitti) / "image_02" / "data" / "0000000010.png"
    np.testing.assert_array_equal(np.frombuffer(image.data, np.uint8).reshape(375, 1242, 3), read_rgb(source))
    depth = depth_of(gts[10][1])
    reference = independent_projection(clip_dir(kitti) / "velodyne_points" / "data" / "0000000010.bin",
                                       clip_calib_dir(kitti))
    assert np.array_equal(np.isfinite(depth), np.isfinite(reference))
    both = np.isfinite(reference)
    assert both.sum() > 10_000
    assert np.abs(depth[both] - reference[both]).max() <= GT_TOLERANCE


def recorded_clip_abs_rel() -> float:
    """The figure docs/benchmarks.md records for meter-xxs-kitti on the clip."""
    text = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    match = re.search(r"\| meter-xxs-kitti \| 78-frame clip \(sequence_sfnd\)[^|]*\|[^|]*\| ([0-9.]+) \|", text)
    assert match, "docs/benchmarks.md has no meter-xxs-kitti row for the 78-frame clip"
    return float(match.group(1))


@pytest.mark.heavy
def test_offline_eval_on_the_clip_gives_the_recorded_abs_rel(clip_bag, tmp_path):
    import json

    assert cli_main(["eval", str(clip_bag), "--weights", "meter-xxs-kitti", "--backend", "onnxruntime",
                     "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["frames"]["received"] == 78
    assert summary["metrics"]["abs_rel"] == pytest.approx(recorded_clip_abs_rel(), abs=0.01)


# ------------------------------------------------------------------ the sample the package carries


def test_the_package_sample_is_drive_0023(kitti, tmp_path):
    sample = sample_drive()
    assert sample.is_relative_to(REPO_ROOT / "sample" / "kitti")
    drive = KittiDrive.open(sample)  # finds its calibration, timestamps and Velodyne depth by itself
    assert (len(drive.frames), drive.gt_source, drive.nominal_rate_hz) == (7, "velodyne_raw", None)
    source = kitti / DRIVE_0023
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        assert (sample.parent / name).read_bytes() == (source.parent / name).read_bytes()
    assert [f.stamp_ns for f in drive.frames] == read_timestamps(source / "image_02" / "timestamps.txt")[:7]
    for frame in drive.frames:
        velodyne_raw = source / "proj_depth" / "velodyne_raw" / "image_02"
        assert frame.gt_depth.read_bytes() == (velodyne_raw / frame.gt_depth.name).read_bytes()
        jpeg, png = read_rgb(frame.image).astype(float), read_rgb(source / "image_02" / "data" / f"{frame.name}.png")
        psnr = 10 * np.log10(255.0**2 / np.mean((jpeg - png) ** 2))
        assert frame.image.suffix == ".jpg" and 25.0 < psnr < 35.0  # a quality-90 JPEG of that very frame
    licence = (sample.parents[1] / "LICENSE.txt").read_text()
    attribution = (sample.parents[1] / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC-SA 3.0" in licence and "Geiger" in attribution and "IJRR" in attribution
    files = [p for p in (REPO_ROOT / "sample").rglob("*") if p.is_file()]
    weights = REPO_ROOT / "weights" / "meter_xxs_kitti.pth"
    assert sum(p.stat().st_size for p in files) + weights.stat().st_size < 8_000_000

    bag = tmp_path / "sample_bag"
    assert cli_main(["kitti2bag", str(sample), "--out", str(bag)]) == 0
    gts = read_back(bag)[bags.GT_TOPIC]
    assert len(gts) == 7
    assert_gt_matches_png(depth_of(gts[6][1]), sample / "proj_depth/velodyne_raw/image_02/0000000006.png")
