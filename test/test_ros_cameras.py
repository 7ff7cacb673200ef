"""Real cameras through the depth node (issue 15), over real rclpy and Fast DDS: other lenses and
aspects keep their metres (canonical camera), CameraInfo is read as image_geometry reads it (binning,
roi), bad camera infos are refused each with its own warning, and parameters set at run time."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.srv import SetParameters, SetParametersAtomically  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import Probe, RosSession, unique, wait_until  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, RegionOfInterest  # noqa: E402

from depth_attn.evaluation.camera_sim import score, simulate  # noqa: E402
from depth_attn.geometry import Intrinsics, project_points  # noqa: E402
from depth_attn.imageio import read_depth_png, read_rgb  # noqa: E402
from depth_attn.ros import convert  # noqa: E402
from depth_attn.ros.depth_node import DepthNode  # noqa: E402

FRAME_ID = "camera_optical"
DEPTH_TOPIC = "depth/image_rect"


@pytest.fixture(scope="module")
def kitti(kitti_annotated):
    meta = json.loads((kitti_annotated / "intrinsics.json").read_text())
    k = Intrinsics.from_matrix(meta["P_rect_02"])
    frames = [(read_rgb(p), read_depth_png(kitti_annotated / "groundtruth_depth" / p.name))
              for p in sorted((kitti_annotated / "image_02").glob("*.png"))]
    return k, frames


@pytest.fixture(scope="module")
def graph():
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="onnxruntime"))
    session = RosSession()
    ns = "/" + unique("cam")
    node = session.add(DepthNode(unique("depth_node"), estimator=estimator, context=session.context, namespace=ns,
                                 parameter_overrides=[Parameter("cloud_stride", value=4),
                                                      Parameter("diagnostics_period", value=60.0)]))
    probe = session.add(Probe(session.context, ns))
    for msg_type, topic in ((Image, DEPTH_TOPIC), (CameraInfo, "depth/camera_info"),
                            (PointCloud2, "points")):
        probe.listen(msg_type, topic)
    probe.publisher(Image, "image")
    probe.publisher(CameraInfo, "camera_info")
    assert wait_until(lambda: node.pub_points.get_subscription_count() > 0 and node.sub_image.get_publisher_count() > 0
                      and node.sub_info.get_publisher_count() > 0, 20.0), "discovery did not complete"
    yield {"session": session, "node": node, "probe": probe, "ns": ns, "estimator": estimator}
    session.close()


_stamp = [1_800_000_000_000_000_000]


def next_stamp() -> int:
    _stamp[0] += 100_000_000
    return _stamp[0]


def camera_info(intrinsics: Intrinsics, width: int, height: int, stamp: int, **fields) -> CameraInfo:
    info = convert.make_camera_info(intrinsics, width, height, convert.make_header(FRAME_ID, stamp))
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def answer(g, rgb: np.ndarray, info: CameraInfo, topic: str = DEPTH_TOPIC):
    """Publish one frame with its camera info; the node's answer on ``topic``."""
    stamp = convert.stamp_to_ns(info.header.stamp)
    g["probe"].publishers_["camera_info"].publish(info)
    wait_until(lambda: g["node"].camera_infos.match(stamp, FRAME_ID).exact, 5.0)
    g["probe"].publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8", convert.make_header(FRAME_ID, stamp)))
    msg = g["probe"].wait_stamp(topic, stamp, 60.0)
    assert msg is not None, f"no {topic} for the frame"
    return msg


def test_other_lenses_and_aspects_through_the_node(graph, kitti):
    """Issue 15's targets through the node: 4:3 centre crop <= 0.080, 1.5x lens <= 0.090, full 0.070."""
    k, frames = kitti
    mean = {}
    for camera in ("full", "4:3", "lens1.5"):
        values = []
        for rgb, gt in frames:
            sim = simulate(rgb, gt, k, camera)
            h, w = sim.rgb.shape[:2]
            depth = convert.image_to_depth(answer(graph, sim.rgb, camera_info(sim.intrinsics, w, h, next_stamp())))
            values.append(score(depth, sim)["abs_rel"])
        mean[camera] = float(np.mean(values))
    assert mean["full"] == pytest.approx(0.0699, abs=0.002), mean
    assert mean["4:3"] <= 0.080 and mean["lens1.5"] <= 0.090, mean


def _grid_error(cloud: PointCloud2, k: Intrinsics, stride: int) -> float:
    """Largest distance in pixels between the cloud's points projected with ``k`` and their pixels."""
    xyz = convert.pointcloud2_xyz(cloud)
    u, v, _ = project_points(xyz, k)
    rows, cols = np.mgrid[0:cloud.height * stride:stride, 0:cloud.width * stride:stride]
    ok = np.isfinite(u)
    return float(max(np.max(np.abs(u[ok] - cols[ok])), np.max(np.abs(v[ok] - rows[ok]))))


def test_binning_and_roi_are_read_as_image_geometry_does(graph, kitti):
    k, frames = kitti
    rgb = frames[0][0]
    node = graph["node"]
    # binning 2: a 621x187 image from the 1242x375 camera; image_geometry: f / 2, c / 2
    binned_rgb = np.ascontiguousarray(rgb[::2, ::2][:187, :621])
    binned = answer(graph, binned_rgb, camera_info(k, 1242, 375, next_stamp(), binning_x=2, binning_y=2), "points")
    equivalent = Intrinsics(k.fx / 2, k.fy / 2, k.cx / 2, k.cy / 2)
    plain = answer(graph, binned_rgb, camera_info(equivalent, 621, 187, next_stamp()), "points")
    assert (binned.height, binned.width) == (plain.height, plain.width) == (-(-187 // 4), -(-621 // 4))
    np.testing.assert_allclose(convert.pointcloud2_xyz(binned), convert.pointcloud2_xyz(plain), rtol=1e-6, atol=1e-6)
    assert _grid_error(binned, equivalent, 4) < 0.01
    # roi: the 500x200 window at (300, 100) of the full camera; image_geometry: c - offset
    roi_rgb = np.ascontiguousarray(rgb[100:300, 300:800])
    roi = RegionOfInterest(x_offset=300, y_offset=100, width=500, height=200)
    windowed = answer(graph, roi_rgb, camera_info(k, 1242, 375, next_stamp(), roi=roi), "points")
    equivalent = k.cropped(300, 100)
    plain = answer(graph, roi_rgb, camera_info(equivalent, 500, 200, next_stamp()), "points")
    np.testing.assert_allclose(convert.pointcloud2_xyz(windowed), convert.pointcloud2_xyz(plain), rtol=1e-6,
                               atol=1e-6)
    assert _grid_error(windowed, equivalent, 4) < 1.0
    assert node.bad_input["camera_info"] == 0 and node.errors == {}


def test_bad_camera_infos_are_refused_each_with_its_own_warning(graph, kitti):
    k, frames = kitti
    rgb = frames[0][0]
    node, probe = graph["node"], graph["probe"]
    bad = {
        "P all zeros": dict(p=[0.0] * 12),
        "negative focal": dict(p=[-721.5, 0.0, 609.6, 0.0, 0.0, 721.5, 172.9, 0.0, 0.0, 0.0, 1.0, 0.0]),
        "NaN in K": dict(k=[float("nan")] + [0.0] * 8),
        "focal 1e-300": dict(p=[1e-300, 0.0, 609.6, 0.0, 0.0, 1e-300, 172.9, 0.0, 0.0, 0.0, 1.0, 0.0]),
        "focal 1e300": dict(p=[1e300, 0.0, 609.6, 0.0, 0.0, 1e300, 172.9, 0.0, 0.0, 0.0, 1.0, 0.0]),
        "roi outside": dict(roi=RegionOfInterest(x_offset=1000, y_offset=0, width=500, height=200)),
        "roi empty, offset outside": dict(roi=RegionOfInterest(x_offset=2000, y_offset=0, width=0, height=0)),
    }
    keys_before = set(node._throttle._last)
    for what, fields in bad.items():
        before = node.bad_input["camera_info"]
        probe.publishers_["camera_info"].publish(camera_info(k, 1242, 375, next_stamp(), **fields))
        assert wait_until(lambda before=before: node.bad_input["camera_info"] == before + 1, 10.0), what
        with np.errstate(all="raise"):  # the good frame after it: no inf points, no numpy warnings
            cloud = answer(graph, rgb, camera_info(k, 1242, 375, next_stamp()), "points")
        assert np.isfinite(convert.pointcloud2_xyz(cloud)).any(), what
    warned = {key[2] for key in set(node._throttle._last) - keys_before if key[:2] == ("bad", "camera_info")}
    # one kind of bad camera_info does not hide another (the two absurd focal lengths are one kind)
    assert warned == {"P zeros", "P focal sign", "K not finite", "P focal absurd", "roi"}, warned
    info = answer(graph, rgb, camera_info(k, 1242, 375, next_stamp()), "depth/camera_info")
    assert np.isfinite(np.asarray(info.k)).all() and np.isfinite(np.asarray(info.p)).all()
    # an unrectified camera (non-zero D) is used, with one warning that the node expects rectified images
    distorted = camera_info(k, 1242, 375, next_stamp(), d=[-0.37, 0.2, 0.0, 0.0, 0.0])
    assert answer(graph, rgb, distorted, "points") is not None and node._warned_distortion
    assert node.errors == {}


def _set(g, params, atomically: bool = False):
    node_name = g["node"].get_fully_qualified_name()
    srv_type = SetParametersAtomically if atomically else SetParameters
    service = "set_parameters_atomically" if atomically else "set_parameters"
    client = g["probe"].create_client(srv_type, f"{node_name}/{service}")
    try:
        assert client.wait_for_service(10.0)
        request = srv_type.Request(parameters=[Parameter(n, value=v).to_parameter_msg() for n, v in params.items()])
        future = client.call_async(request)
        assert wait_until(future.done, 10.0)
        response = future.result()
        return [response.result] if atomically else list(response.results)
    finally:
        g["probe"].destroy_client(client)


def test_parameters_at_run_time(graph, kitti):
    k, frames = kitti
    rgb = frames[0][0]
    node = graph["node"]
    for name, value in (("network", "pixelformer"), ("backend", "torch"), ("precision", "fp16"),
                        ("device", "cuda"), ("weights", "none")):
        (result,) = _set(graph, {name: value})
        assert not result.successful and "read-only" in result.reason, (name, result.reason)
    assert (node.settings.network, node.settings.backend, node.settings.weights) == ("meter", "torch", "auto")
    # cloud_stride applies on the next frame
    (result,) = _set(graph, {"cloud_stride": 8})
    assert result.successful, result.reason
    cloud = answer(graph, rgb, camera_info(k, 1242, 375, next_stamp()), "points")
    assert (cloud.height, cloud.width) == (-(-375 // 8), -(-1242 // 8))
    # an invalid value is refused whole: nothing of the set applies
    (result,) = _set(graph, {"cloud_stride": 2, "max_depth": -5.0}, atomically=True)
    assert not result.successful
    (result,) = _set(graph, {"cloud_stride": "two"})
    assert not result.successful
    assert node.settings.cloud_stride == 8 and node.estimator.max_depth == 80.0
    # max_depth applies to the next frame's clamp
    (result,) = _set(graph, {"max_depth": 20.0, "cloud_stride": 4}, atomically=True)
    assert result.successful, result.reason
    depth = convert.image_to_depth(answer(graph, rgb, camera_info(k, 1242, 375, next_stamp())))
    assert np.nanmax(depth) <= 20.0 and node.settings.cloud_stride == 4
    (result,) = _set(graph, {"max_depth": 80.0})
    assert result.successful and node.estimator.max_depth == 80.0


def test_a_weights_error_says_what_to_do_not_another_backend(graph, tmp_path):
    bad = tmp_path / "module.pth"
    import torch

    torch.save(torch.nn.Linear(2, 2), bad)  # a pickle that needs code: refused, never run
    for weights in (str(tmp_path / "missing.pth"), str(bad)):
        with pytest.raises(RuntimeError) as failed:
            DepthNode(unique("depth_node"), context=graph["session"].context,
                      parameter_overrides=[Parameter("weights", value=weights)])
        text = str(failed.value)
        assert "another backend" not in text and "weights import" in text and "weights_only" not in text, text


def test_rejected_frames_are_an_error_in_diagnostics_then_clear(graph, kitti):
    """yuv422 with an odd width is bad input (warned, counted, ERROR in diagnostics with the count and the
    reason), not an internal error; the next good frame is answered and the next report is OK again."""
    from diagnostic_msgs.msg import DiagnosticStatus

    k, frames = kitti
    rgb = frames[0][0]
    node, probe = graph["node"], graph["probe"]
    node.diagnostics()  # (reports what came before)
    odd = convert.rgb_to_image(rgb[:, :1240].copy(), "yuv422", convert.make_header(FRAME_ID, next_stamp()))
    odd.width, odd.step = 1241, 2 * 1241
    odd.data = odd.data[: 2 * 1241 * 375]
    before = node.bad_input["image"]
    probe.publishers_["image"].publish(odd)
    assert wait_until(lambda: node.bad_input["image"] == before + 1, 10.0)
    status = node.diagnostics()
    assert status.level == DiagnosticStatus.ERROR and "1 input message(s) rejected" in status.message
    assert "even width" in status.message and "1241x375" in status.message
    for encoding in ("yuv422", "bayer_rggb8", "nv21"):
        msg = convert.rgb_to_image(rgb[:374], encoding, convert.make_header(FRAME_ID, next_stamp()))
        info = camera_info(k, 1242, 374, convert.stamp_to_ns(msg.header.stamp))
        probe.publishers_["camera_info"].publish(info)
        wait_until(lambda info=info: node.camera_infos.match(convert.stamp_to_ns(info.header.stamp), FRAME_ID).exact)
        probe.publishers_["image"].publish(msg)
        depth = probe.wait_stamp(DEPTH_TOPIC, convert.stamp_to_ns(msg.header.stamp), 60.0)
        assert depth is not None and (depth.height, depth.width) == (374, 1242), encoding
    assert node.errors == {}
    assert node.diagnostics().level == DiagnosticStatus.OK


def test_diagnostics_go_stale_without_images(graph):
    from diagnostic_msgs.msg import DiagnosticStatus

    node = graph["session"].add(DepthNode(unique("depth_node"), estimator=graph["estimator"],
                                          context=graph["session"].context, namespace=graph["ns"] + "_quiet",
                                          parameter_overrides=[Parameter("diagnostics_period", value=0.1)]))
    assert wait_until(lambda: node.diagnostics().level == DiagnosticStatus.STALE, 5.0)
    assert "no image on" in node.diagnostics().message


def test_depth_pairs_with_its_sibling_camera_info(graph, kitti):
    """image_transport's camera subscribers (depth_image_proc, RViz) take the camera_info beside the image
    topic: <namespace of the image>/camera_info. For depth/image_rect that is depth/camera_info."""
    k, frames = kitti
    node = graph["node"]
    image_topic = node.pub_depth.topic_name
    assert image_topic == f"{graph['ns']}/depth/image_rect"
    sibling = image_topic.rsplit("/", 1)[0] + "/camera_info"  # image_transport::getCameraInfoTopic
    assert node.pub_info.topic_name == sibling and node.pub_color.topic_name == f"{graph['ns']}/depth/image_color"
    rgb = frames[0][0]
    info = camera_info(k, 1242, 375, next_stamp())
    depth = answer(graph, rgb, info)
    paired = graph["probe"].wait_stamp("depth/camera_info", convert.stamp_to_ns(depth.header.stamp), 10.0)
    assert paired is not None and paired.header == depth.header and (paired.width, paired.height) == (1242, 375)


def test_a_network_that_must_be_built_is_built_after_the_node_is_up(graph, kitti, monkeypatch):
    """Item 7 with what this machine has: ONNX Runtime's ONNX export (no TensorRT here) takes the
    TensorRT engine build's path: the node is up at once, diagnostics say "building network (N s)",
    depth starts when it is ready; a build that fails leaves the node up with an ERROR that says why."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from depth_attn.ros import depth_node

    monkeypatch.setattr(depth_node, "BACKGROUND_BUILD", ("tensorrt", "onnxruntime"))
    k, frames = kitti
    session = graph["session"]
    ns = graph["ns"] + "_bg"
    node = session.add(DepthNode(unique("depth_node"), context=session.context, namespace=ns,
                                 parameter_overrides=[Parameter("backend", value="onnxruntime"),
                                                      Parameter("diagnostics_period", value=60.0)]))
    assert node.estimator is None  # the export has not finished: the constructor did not wait for it
    status = node.diagnostics()
    assert status.level == DiagnosticStatus.WARN and status.message.startswith("building network ("), status.message
    assert wait_until(lambda: node.estimator is not None or node.build_error, 180.0) and node.build_error is None
    probe = session.add(Probe(session.context, ns))
    probe.listen(Image, DEPTH_TOPIC)
    pub_image, pub_info = probe.publisher(Image, "image"), probe.publisher(CameraInfo, "camera_info")
    assert wait_until(lambda: node.sub_image.get_publisher_count() > 0 and node.pub_depth.get_subscription_count() > 0,
                      20.0)
    stamp = next_stamp()
    pub_info.publish(camera_info(k, 1242, 375, stamp))
    wait_until(lambda: node.camera_infos.match(stamp, FRAME_ID).exact, 5.0)
    pub_image.publish(convert.rgb_to_image(frames[0][0], "rgb8", convert.make_header(FRAME_ID, stamp)))
    assert probe.wait_stamp(DEPTH_TOPIC, stamp, 60.0) is not None
    assert "building" not in node.diagnostics().message

    failing = session.add(DepthNode(unique("depth_node"), context=session.context, namespace=ns + "_fail",
                                    parameter_overrides=[Parameter("backend", value="onnxruntime"),
                                                         Parameter("weights", value="/nonexistent.pth")]))
    assert wait_until(lambda: failing.build_error is not None, 60.0)
    status = failing.diagnostics()
    assert status.level == DiagnosticStatus.ERROR and "cannot start" in status.message and "weights" in status.message


# ------------------------------------------------------------------ issue 30: real-world timing, hostile sets

def _publish_image_then_info(g, rgb, info: CameraInfo, delay_s: float) -> None:
    """The usual driver order: the image first, its camera info ``delay_s`` later."""
    stamp = convert.stamp_to_ns(info.header.stamp)
    g["probe"].publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8", convert.make_header(FRAME_ID, stamp)))
    if delay_s:
        time.sleep(delay_s)
    g["probe"].publishers_["camera_info"].publish(info)


def test_each_depth_frame_carries_its_own_images_camera_info(graph, kitti):
    """Image first, its CameraInfo 0, 5 or 20 ms later, fx changing per frame: every depth/camera_info
    (and so every cloud) has its own image's fx, never the previous frame's."""
    k, frames = kitti
    rgb = frames[0][0]
    timeouts = graph["node"].camera_infos.timeouts
    for delay_ms in (0, 5, 20):
        for i in range(4):
            fx = 700.0 + 10.0 * i + delay_ms
            stamp = next_stamp()
            info = camera_info(Intrinsics(fx, fx, k.cx, k.cy), 1242, 375, stamp)
            _publish_image_then_info(graph, rgb, info, delay_ms / 1e3)
            out = graph["probe"].wait_stamp("depth/camera_info", stamp, 60.0)
            assert out is not None, (delay_ms, i)
            assert out.p[0] == pytest.approx(fx) and out.k[0] == pytest.approx(fx), (delay_ms, i, out.p[0])
    assert graph["node"].camera_infos.timeouts == timeouts


def test_a_camera_info_that_never_comes_times_out_to_the_newest_one(graph, kitti, capfd):
    k, frames = kitti
    rgb = frames[0][0]
    node, probe = graph["node"], graph["probe"]
    answer(graph, rgb, camera_info(k, 1242, 375, next_stamp()))  # infos have come with exact stamps
    timeouts = node.camera_infos.timeouts
    stamp = next_stamp()  # this image's camera info is lost
    probe.publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8", convert.make_header(FRAME_ID, stamp)))
    out = probe.wait_stamp("depth/camera_info", stamp, 60.0)
    assert out is not None and out.p[0] == pytest.approx(k.fx)  # the newest camera info of the frame
    assert node.camera_infos.timeouts == timeouts + 1
    assert "did not come within camera_info_wait=0.1 s" in capfd.readouterr().err


def test_a_camera_info_of_another_aspect_is_refused_once(graph, kitti, capfd):
    """CameraInfo for 1242x375 with a 640x480 image: no uneven rescale (fx 372, fy 924), depth only, one
    warning; the same view at half resolution (621x187.5 -> 621x188) is scaled."""
    k, frames = kitti
    rgb = frames[0][0]
    small = np.ascontiguousarray(np.resize(rgb, (480, 640, 3)))
    stamps = []
    for _ in range(2):
        stamps.append(next_stamp())
        answer(graph, small, camera_info(k, 1242, 375, stamps[-1]))  # its depth comes
    for stamp in stamps:
        assert graph["probe"].find("depth/camera_info", stamp) is None and graph["probe"].find("points", stamp) is None
    warnings = [line for line in capfd.readouterr().err.splitlines() if "another aspect" in line]
    assert len(warnings) == 1 and "1242x375" in warnings[0] and "640x480" in warnings[0], warnings
    half = np.ascontiguousarray(rgb[::2, ::2])  # 621x188: the same view
    out = answer(graph, half, camera_info(k, 1242, 375, next_stamp()), "depth/camera_info")
    assert (out.width, out.height) == (621, 188) and out.p[0] == pytest.approx(k.fx / 2, rel=0.01)


def test_a_float_parameter_takes_an_integer_and_type_errors_are_words(graph, kitti):
    node = graph["node"]
    (result,) = _set(graph, {"max_depth": 20})  # an Integer, as `ros2 param set depth_node max_depth 20` sends
    assert result.successful, result.reason
    assert node.settings.max_depth == 20.0 and isinstance(node.settings.max_depth, float)
    (result,) = _set(graph, {"max_depth": "far"})
    assert not result.successful and "'max_depth' must be a number" in result.reason and "a string" in result.reason
    (result,) = _set(graph, {"cloud_stride": 2.5})
    assert not result.successful and "must be an integer, got a number" in result.reason, result.reason
    (result,) = _set(graph, {"max_depth": 80.0})
    assert result.successful and node.estimator.max_depth == 80.0


def test_a_storm_of_parameter_sets_is_a_few_lines(graph, capfd):
    """Hundreds of sets (a slider, a script): sets to the value a parameter has say nothing; changes say
    one line per parameter per 5 s."""
    capfd.readouterr()
    started = time.monotonic()
    for i in range(300):
        (result,) = _set(graph, {"cloud_stride": 1 + i % 4} if i % 2 else {"cloud_rgb": True})
        assert result.successful
    elapsed = time.monotonic() - started
    lines = [line for line in capfd.readouterr().err.splitlines() if "applies from the next frame" in line]
    assert lines and all("cloud_stride" in line for line in lines)  # cloud_rgb never changed
    assert len(lines) <= elapsed / 5.0 + 1, (len(lines), elapsed)
    assert "changes not logged" in lines[-1] or len(lines) == 150


def test_max_image_pixels_is_a_run_time_parameter(graph, kitti):
    k, frames = kitti
    rgb = frames[0][0]
    node = graph["node"]
    (result,) = _set(graph, {"max_image_pixels": 400_000})  # under the 1242x375 = 465750 of the frame
    assert result.successful
    before = node.bad_input["image"]
    stamp = next_stamp()
    graph["probe"].publishers_["camera_info"].publish(camera_info(k, 1242, 375, stamp))
    graph["probe"].publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8",
                                                                     convert.make_header(FRAME_ID, stamp)))
    assert wait_until(lambda: node.bad_input["image"] == before + 1, 30.0)
    assert "limit of 400000 pixels" in node.health._last_bad_reason
    (result,) = _set(graph, {"max_image_pixels": 50_000_000})
    assert result.successful
    answer(graph, rgb, camera_info(k, 1242, 375, next_stamp()))
