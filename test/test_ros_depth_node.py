"""The depth node over real rclpy and Fast DDS, in-process, on the real KITTI frames in ../shared.

One DepthEstimator (PyTorch, the official METER-XXS KITTI checkpoint) is built per module and
shared by the raw-image node and the compressed-image node.
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from ros_harness import Probe, RosSession, unique, wait_until  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from depth_attn.geometry import Intrinsics, project_points  # noqa: E402
from depth_attn.imageio import read_rgb  # noqa: E402
from depth_attn.ros import convert  # noqa: E402
from depth_attn.ros.depth_node import DepthNode  # noqa: E402

FRAME_ID = "camera_left_optical"
STRIDE = 4


def kitti_camera_info(kitti_annotated, stamp_ns: int) -> CameraInfo:
    import json

    meta = json.loads((kitti_annotated / "intrinsics.json").read_text())
    K = meta["K"]
    w, h = meta["image_size_wh"]
    return convert.make_camera_info([K["fx"], K["fy"], K["cx"], K["cy"]], w, h,
                                    convert.make_header(FRAME_ID, stamp_ns), P=meta["P_rect_02"])


@pytest.fixture(scope="module")
def graph(kitti_annotated):
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="torch", max_depth=80.0))
    session = RosSession()
    ns_raw, ns_jpeg = "/" + unique("raw"), "/" + unique("jpeg")
    common = [Parameter("cloud_stride", value=STRIDE), Parameter("diagnostics_period", value=0.2)]
    raw = session.add(DepthNode(unique("depth_node"), estimator=estimator, context=session.context,
                                namespace=ns_raw, parameter_overrides=common))
    jpeg = session.add(DepthNode(unique("depth_node"), estimator=estimator, context=session.context,
                                 namespace=ns_jpeg, parameter_overrides=common + [
                                     Parameter("image_transport", value="compressed"),
                                     Parameter("cloud_rgb", value=False)]))
    probes = {}
    for name, ns, node in (("raw", ns_raw, raw), ("jpeg", ns_jpeg, jpeg)):
        probe = session.add(Probe(session.context, ns))
        for msg_type, topic in ((Image, "depth/image_rect"), (CameraInfo, "depth/camera_info"), (PointCloud2, "points"),
                                (Image, "depth/image_color")):
            probe.listen(msg_type, topic)  # default QoS: reliable
        probe.publisher(Image, "image")
        probe.publisher(CompressedImage, "image/compressed")
        probe.publisher(CameraInfo, "camera_info")
        probes[name] = probe
        assert wait_until(lambda node=node: node.pub_points.get_subscription_count() > 0
                          and node.sub_image.get_publisher_count() > 0
                          and node.sub_info.get_publisher_count() > 0, 20.0), "discovery did not complete"
    from diagnostic_msgs.msg import DiagnosticArray

    probes["raw"].listen(DiagnosticArray, "/diagnostics")
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")
    yield {"session": session, "raw": raw, "jpeg": jpeg, "probes": probes, "estimator": estimator, "rgb": rgb}
    session.close()


_stamp = [1_700_000_000_000_000_000]


def next_stamp() -> int:
    _stamp[0] += 100_000_000
    return _stamp[0]


def send(g, which: str, rgb: np.ndarray, stamp_ns: int, kitti_annotated, info: bool = True, encoding="rgb8"):
    probe = g["probes"][which]
    header = convert.make_header(FRAME_ID, stamp_ns)
    if info:
        probe.publishers_["camera_info"].publish(kitti_camera_info(kitti_annotated, stamp_ns))
    if which == "jpeg":
        probe.publishers_["image/compressed"].publish(convert.rgb_to_compressed(rgb, "jpeg", header, quality=95))
    else:
        probe.publishers_["image"].publish(convert.rgb_to_image(rgb, encoding, header))


def test_depth_keeps_header_and_equals_the_estimator(graph, kitti_annotated):
    stamp = next_stamp()
    send(graph, "raw", graph["rgb"], stamp, kitti_annotated)
    probe = graph["probes"]["raw"]
    depth_msg = probe.wait_stamp("depth/image_rect", stamp)
    assert depth_msg is not None, "no depth for the frame"
    assert depth_msg.header.frame_id == FRAME_ID
    assert (depth_msg.encoding, depth_msg.height, depth_msg.width) == ("32FC1", 375, 1242)
    depth = convert.image_to_depth(depth_msg)
    expected = graph["estimator"].estimate(graph["rgb"])
    assert np.nanmax(np.abs(depth - expected)) <= 1e-5
    assert 3.0 < float(np.median(depth)) < 40.0  # a street scene, in metres

    info = probe.wait_stamp("depth/camera_info", stamp)
    assert info is not None and info.header.frame_id == FRAME_ID
    assert (info.width, info.height) == (1242, 375)
    assert info.p[0] == pytest.approx(721.5377)


def test_points_project_back_onto_their_pixels(graph, kitti_annotated):
    stamp = next_stamp()
    send(graph, "raw", graph["rgb"], stamp, kitti_annotated)
    probe = graph["probes"]["raw"]
    cloud = probe.wait_stamp("points", stamp)
    depth = convert.image_to_depth(probe.wait_stamp("depth/image_rect", stamp))
    assert cloud is not None and cloud.header.frame_id == FRAME_ID
    assert (cloud.height, cloud.width) == (-(-375 // STRIDE), -(-1242 // STRIDE))
    assert not cloud.is_dense
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
    xyz = convert.pointcloud2_xyz(cloud)
    k = Intrinsics(721.5377, 721.5377, 609.5593, 172.854)  # P_rect_02 of intrinsics.json
    u, v, z = project_points(xyz, k)
    rows, cols = np.mgrid[0:375:STRIDE, 0:1242:STRIDE]
    np.testing.assert_allclose(u, cols, atol=1e-2)
    np.testing.assert_allclose(v, rows, atol=1e-2)
    np.testing.assert_allclose(z, depth[::STRIDE, ::STRIDE], rtol=1e-6)
    assert np.array_equal(convert.pointcloud2_rgb(cloud), graph["rgb"][::STRIDE, ::STRIDE])

    color = probe.wait_stamp("depth/image_color", stamp)
    assert color is not None and color.encoding == "rgb8" and (color.height, color.width) == (375, 1242)


def test_compressed_input_gives_the_raw_depth_up_to_jpeg_loss(graph, kitti_annotated):
    stamp = next_stamp()
    send(graph, "jpeg", graph["rgb"], stamp, kitti_annotated)
    probe = graph["probes"]["jpeg"]
    depth_msg = probe.wait_stamp("depth/image_rect", stamp)
    assert depth_msg is not None and depth_msg.header.frame_id == FRAME_ID
    depth = convert.image_to_depth(depth_msg)
    raw_depth = graph["estimator"].estimate(graph["rgb"])
    rel = np.abs(depth - raw_depth) / raw_depth
    assert float(np.median(rel)) < 0.02 and float(np.percentile(rel, 90)) < 0.08
    # and exactly the estimator's answer on the decoded JPEG
    jpeg = convert.rgb_to_compressed(graph["rgb"], "jpeg", quality=95)
    decoded = convert.compressed_to_rgb(jpeg)
    assert np.nanmax(np.abs(depth - graph["estimator"].estimate(decoded))) <= 1e-5
    cloud = probe.wait_stamp("points", stamp)
    assert cloud is not None and [f.name for f in cloud.fields] == ["x", "y", "z"]


def test_qos_best_effort_camera_in_reliable_subscribers_out(graph):
    node, probe = graph["raw"], graph["probes"]["raw"]
    assert probe.publishers_["image"].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    for pub in (node.pub_depth, node.pub_points):
        assert pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        infos = node.get_subscriptions_info_by_topic(pub.topic_name)
        assert any(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    # (the frames of the tests above travelled exactly this way)
    assert probe.received["depth/image_rect"] and probe.received["points"]


def test_overload_answers_the_last_frame_and_counts_drops(graph, kitti_annotated):
    node, probe = graph["raw"], graph["probes"]["raw"]
    received0, dropped0, out0 = node.slot.received, node.slot.dropped, node.frames_out
    stamps = [next_stamp() for _ in range(60)]
    image = convert.rgb_to_image(graph["rgb"], "rgb8")
    pending_seen = []
    for stamp in stamps:
        probe.publishers_["camera_info"].publish(kitti_camera_info(kitti_annotated, stamp))
        image.header = convert.make_header(FRAME_ID, stamp)
        probe.publishers_["image"].publish(image)
        pending_seen.append(node.slot.pending)
    assert probe.wait_stamp("depth/image_rect", stamps[-1], 60.0) is not None, "the last frame was not answered"
    assert wait_until(lambda: not node.worker.busy and node.slot.pending == 0, 30.0)
    received = node.slot.received - received0
    dropped = node.slot.dropped - dropped0
    answered = node.frames_out - out0
    assert dropped > 0
    assert received == dropped + answered  # every frame that arrived was answered or counted as dropped
    assert answered < 60
    assert max(pending_seen) <= 1 and node.slot.max_pending <= 1
    # the drops are reported on /diagnostics
    def reported() -> bool:
        for array in reversed(probe.received["/diagnostics"]):
            for status in array.status:
                if status.name.startswith(node.get_name()):
                    values = {kv.key: kv.value for kv in status.values}
                    return int(values["frames_dropped"]) >= node.slot.dropped and "network_ms_p50" in values
        return False

    assert probe.wait_for(reported, 10.0), "diagnostics do not report the drops"


def _malformed_images(rgb: np.ndarray):
    good = convert.rgb_to_image(rgb[:40, :64].copy(), "rgb8")

    def variant(**changes) -> Image:
        msg = Image(height=good.height, width=good.width, encoding=good.encoding, step=good.step,
                    is_bigendian=good.is_bigendian)
        msg.data = good.data
        for key, value in changes.items():
            setattr(msg, key, value)
        return msg

    import array

    return {
        "unknown encoding": variant(encoding="weird16"),
        "step too short": variant(step=good.step - 3),
        "data too short": variant(data=array.array("B", bytes(len(good.data) - 100))),
        "zero size": variant(width=0, height=0, step=0, data=array.array("B")),
    }


def test_malformed_input_is_counted_and_the_next_good_frame_answered(graph, kitti_annotated):
    node, probe = graph["raw"], graph["probes"]["raw"]
    for kind, bad in _malformed_images(graph["rgb"]).items():
        before = node.bad_input["image"]
        stamp = next_stamp()
        bad.header = convert.make_header(FRAME_ID, stamp)
        probe.publishers_["image"].publish(bad)
        assert wait_until(lambda before=before: node.bad_input["image"] == before + 1, 10.0), kind
        good_stamp = next_stamp()
        send(graph, "raw", graph["rgb"], good_stamp, kitti_annotated)
        assert probe.wait_stamp("depth/image_rect", good_stamp) is not None, f"no answer after {kind}"
        assert probe.find("depth/image_rect", stamp) is None

    for matrix in ("k", "p"):
        before = node.bad_input["camera_info"]
        info = kitti_camera_info(kitti_annotated, next_stamp())
        setattr(info, matrix, [0.0] * len(getattr(info, matrix)))
        probe.publishers_["camera_info"].publish(info)
        assert wait_until(lambda before=before: node.bad_input["camera_info"] == before + 1, 10.0), matrix
        good_stamp = next_stamp()
        send(graph, "raw", graph["rgb"], good_stamp, kitti_annotated)
        assert probe.wait_stamp("points", good_stamp) is not None
    assert node.errors == {}


def test_malformed_compressed_image_is_counted(graph, kitti_annotated):
    node, probe = graph["jpeg"], graph["probes"]["jpeg"]
    before = node.bad_input["image"]
    bad = CompressedImage(header=convert.make_header(FRAME_ID, next_stamp()), format="jpeg")
    bad.data = b"\xff\xd8 not a jpeg at all"
    probe.publishers_["image/compressed"].publish(bad)
    assert wait_until(lambda: node.bad_input["image"] == before + 1, 10.0)
    stamp = next_stamp()
    send(graph, "jpeg", graph["rgb"], stamp, kitti_annotated)
    assert probe.wait_stamp("depth/image_rect", stamp) is not None


def test_without_matching_stamps_the_latest_camera_info_is_used(graph, kitti_annotated):
    node, probe = graph["raw"], graph["probes"]["raw"]
    probe.publishers_["camera_info"].publish(kitti_camera_info(kitti_annotated, 42))  # a stamp no image has
    wait_until(lambda: node.camera_infos.match(42, FRAME_ID).exact, 5.0)
    fallbacks = node.camera_infos.fallbacks
    stamp = next_stamp()
    send(graph, "raw", graph["rgb"], stamp, kitti_annotated, info=False)
    cloud = probe.wait_stamp("points", stamp)
    assert cloud is not None and node.camera_infos.fallbacks > fallbacks
    assert probe.wait_stamp("depth/camera_info", stamp).header.frame_id == FRAME_ID


def test_depth_at_the_network_resolution_agrees_with_its_camera_info(graph, kitti_annotated):
    """depth_resolution: network (set at run time): depth/image_rect at 636x192 with its own scaled
    depth/camera_info; its points and the camera-resolution depth's land within one network pixel."""
    node, probe = graph["raw"], graph["probes"]["raw"]
    assert node.set_parameters([Parameter("depth_resolution", value="network")])[0].successful
    try:
        stamp = next_stamp()
        send(graph, "raw", graph["rgb"], stamp, kitti_annotated)
        depth_msg = probe.wait_stamp("depth/image_rect", stamp)
        info = probe.wait_stamp("depth/camera_info", stamp)
        cloud = probe.wait_stamp("points", stamp)
        color = probe.wait_stamp("depth/image_color", stamp)
    finally:
        assert node.set_parameters([Parameter("depth_resolution", value="camera")])[0].successful
    assert (depth_msg.height, depth_msg.width) == (192, 636) and (info.width, info.height) == (636, 192)
    assert (color.height, color.width) == (192, 636) and (cloud.height, cloud.width) == (48, 159)
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    assert fx == pytest.approx(721.5377 * 636 / 1242, rel=1e-6) and fy == pytest.approx(721.5377 * 192 / 375, rel=1e-6)
    assert cx == pytest.approx((609.5593 + 0.5) * 636 / 1242 - 0.5, rel=1e-6)
    assert cy == pytest.approx((172.854 + 0.5) * 192 / 375 - 0.5, rel=1e-6)
    small = convert.image_to_depth(depth_msg)
    full = graph["estimator"].estimate(graph["rgb"], intrinsics=Intrinsics(721.5377, 721.5377, 609.5593, 172.854))
    # the network-resolution points, seen by the full camera, land where the camera-resolution depth is
    xyz = convert.pointcloud2_xyz(cloud)
    np.testing.assert_allclose(xyz[..., 2], small[::STRIDE, ::STRIDE], rtol=1e-6)
    u, v, z = project_points(xyz, Intrinsics(721.5377, 721.5377, 609.5593, 172.854))
    rows, cols = np.mgrid[0:192:STRIDE, 0:636:STRIDE]
    assert np.abs(u - ((cols + 0.5) * 1242 / 636 - 0.5)).max() < 1242 / 636  # within one network pixel
    assert np.abs(v - ((rows + 0.5) * 375 / 192 - 0.5)).max() < 375 / 192
    sampled = full[np.clip(np.rint(v), 0, 374).astype(int), np.clip(np.rint(u), 0, 1241).astype(int)]
    assert float(np.median(np.abs(sampled - z) / sampled)) < 0.02


def test_a_decompression_bomb_is_refused_from_its_header_and_the_next_frame_answered(graph, kitti_annotated, capfd):
    """A 1.2 MB PNG that decodes to 20000x20000 (1.2 GB): refused by the header check, one warning naming
    the size and the limit, and the next frame answered (issue 30)."""
    from png_bomb import png_bomb

    node, probe = graph["jpeg"], graph["probes"]["jpeg"]
    before = node.bad_input["image"]
    bomb = CompressedImage(header=convert.make_header(FRAME_ID, next_stamp()), format="png")
    bomb.data = png_bomb(20000, 20000)
    probe.publishers_["image/compressed"].publish(bomb)
    assert wait_until(lambda: node.bad_input["image"] == before + 1, 20.0)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "20000x20000" in line]
    assert len(warnings) == 1 and "bad image ignored" in warnings[0] and "limit of 50000000 pixels" in warnings[0]
    stamp = next_stamp()
    send(graph, "jpeg", graph["rgb"], stamp, kitti_annotated)
    assert probe.wait_stamp("depth/image_rect", stamp) is not None
    assert node.errors == {}
