"""Reading bags: frames by stamp, the image iterator, damaged files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from depth_attn.data import bags
from depth_attn.imageio import read_rgb
from depth_attn.paths import REPO_ROOT


def test_iter_images_and_frames(kitti_bag, kitti_annotated):
    images = list(bags.iter_images(kitti_bag))
    assert len(images) == 4 and all(i.shape == (375, 1242, 3) and i.dtype == np.uint8 for i in images)
    np.testing.assert_array_equal(images[2], read_rgb(kitti_annotated / "image_02" / "0000000050.png"))
    frames = list(bags.iter_frames(kitti_bag))
    assert [f.gt is not None for f in frames] == [True, False, True, True]
    assert all(f.intrinsics.fx == pytest.approx(721.5377) for f in frames)
    assert bags.count_messages(kitti_bag, bags.GT_TOPIC) == 3
    # the .mcap file on its own reads the same
    assert len(list(bags.iter_images(kitti_bag / "bag.mcap"))) == 4


def test_truncated_mcap_yields_what_is_there_then_names_the_file(kitti_bag, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(kitti_bag, damaged)
    mcap = damaged / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:5_000_000])
    full = [(m.topic, m.log_time_ns) for m in bags.iter_messages(kitti_bag)]
    got = []
    with pytest.raises(bags.BagError, match=f"{mcap}.*truncated"):
        for message in bags.iter_messages(damaged):
            got.append((message.topic, message.log_time_ns))
    assert 0 < len(got) < len(full) and got == full[: len(got)]
    assert bags.bag_topics(damaged) == bags.bag_topics(kitti_bag)


def test_not_a_bag(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "junk.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(bags.BagError, match="junk"):
        list(bags.iter_messages(junk))
    with pytest.raises(bags.BagError, match="no colour image topic"):
        bags.find_image_topic({"/x": "std_msgs/msg/String"})


def test_restamp_cdr_changes_only_the_stamp(kitti_bag):
    message = next(m for m in bags.iter_messages(kitti_bag, [bags.GT_TOPIC]))
    assert bags.starts_with_header(message.msgtype) and not bags.starts_with_header(bags.TF_TYPE)
    stamp = 1_795_000_000_123_456_789
    restamped = bags.BagMessage(message.topic, message.msgtype, message.log_time_ns,
                                bags.restamp_cdr(message.rawdata, stamp))
    before, after = message.deserialize(), restamped.deserialize()
    assert bags.stamp_to_ns(after.header.stamp) == stamp == bags.stamp_of_cdr(restamped.rawdata)
    assert bags.stamp_of_cdr(message.rawdata) == bags.stamp_to_ns(before.header.stamp)
    assert after.header.frame_id == before.header.frame_id and after.encoding == "32FC1"
    np.testing.assert_array_equal(after.data, before.data)


def test_frames_decode_every_image_through_encodings(kitti_annotated):
    """The bag reader has no decoder of its own: camera encodings, JPEG/PNG and depth all go through
    depth_attn.encodings (the node's path), with BagError naming what it cannot read."""
    from depth_attn import encodings
    from depth_attn.data import frames
    from depth_attn.imageio import read_depth_png

    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    for encoding in ("rgb8", "bgr8", "mono8", "yuv422"):
        msg = bags.image_message(5, "cam", encodings.from_rgb(rgb, encoding), encoding)
        np.testing.assert_array_equal(frames.decode_rgb(msg), encodings.to_rgb(
            msg.data, encoding, msg.width, msg.height, msg.step))
    np.testing.assert_array_equal(frames.decode_rgb(bags.image_message(5, "cam", rgb, "rgb8")), rgb)
    np.testing.assert_array_equal(frames.decode_rgb(bags.compressed_image_message(5, "cam", rgb, "png")), rgb)

    metres = read_depth_png(kitti_annotated / "groundtruth_depth" / "0000000005.png")
    millimetres = np.round(metres * 1000).astype(np.uint16)
    depth = frames.decode_depth(bags.image_message(5, "cam", millimetres, "16UC1"))
    assert np.array_equal(np.isnan(depth), millimetres == 0)
    np.testing.assert_allclose(depth[millimetres > 0], millimetres[millimetres > 0] / 1000.0, rtol=1e-6)
    with pytest.raises(bags.BagError, match="'mono8'.*expected 32FC1 or 16UC1"):
        frames.decode_depth(bags.image_message(5, "cam", millimetres.astype(np.uint8), "mono8"))
    with pytest.raises(bags.BagError, match="unsupported encoding 'bayer_rggb12'"):
        frames.decode_rgb(bags.image_message(5, "cam", rgb[..., 0], "bayer_rggb12"))
    source = (REPO_ROOT / "depth_attn" / "data" / "frames.py").read_text()
    assert "cv2" not in source and "rosbags.image" not in source
