"""The depth node as a managed node, over real rclpy and Fast DDS: driven through the lifecycle_msgs
services (get_state, change_state) as Nav2's lifecycle_manager drives it; its laser scan and capped
cloud on a real annotated KITTI frame; the Nav2 costmap example against the node's real topics."""

from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import Probe, RosSession, unique, wait_until  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2  # noqa: E402

from depth_attn.imageio import read_depth_png, read_rgb  # noqa: E402
from depth_attn.laser_scan import depth_to_scan  # noqa: E402
from depth_attn.paths import REPO_ROOT  # noqa: E402
from depth_attn.ros import convert  # noqa: E402
from depth_attn.ros.depth_node import DepthNode  # noqa: E402

FRAME_ID = "camera_left_optical"
FRAME = "0000000005"
_stamp = [1_800_000_000_000_000_000]


def next_stamp() -> int:
    _stamp[0] += 100_000_000
    return _stamp[0]


def camera_info(kitti_annotated, stamp_ns: int) -> CameraInfo:
    import json

    meta = json.loads((kitti_annotated / "intrinsics.json").read_text())
    K, (w, h) = meta["K"], meta["image_size_wh"]
    return convert.make_camera_info([K["fx"], K["fy"], K["cx"], K["cy"]], w, h,
                                    convert.make_header(FRAME_ID, stamp_ns), P=meta["P_rect_02"])


@pytest.fixture(scope="module")
def session(kitti_annotated):
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    ros = RosSession()
    ros.estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend="torch", max_depth=80.0))
    ros.rgb = read_rgb(kitti_annotated / "image_02" / f"{FRAME}.png")
    yield ros
    ros.close()


class Manager:
    """What a lifecycle manager does: lifecycle_msgs service calls to one node."""

    def __init__(self, probe: Probe, node_name: str) -> None:
        self.probe = probe
        self.get = probe.create_client(GetState, f"{node_name}/get_state")
        self.change = probe.create_client(ChangeState, f"{node_name}/change_state")
        self.set = probe.create_client(SetParameters, f"{node_name}/set_parameters")
        assert self.get.wait_for_service(10.0) and self.change.wait_for_service(10.0)

    def _call(self, client, request, timeout: float = 120.0):
        future = client.call_async(request)
        assert wait_until(future.done, timeout), "no answer from the node"
        return future.result()

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def set_parameter(self, name: str, value):
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self._call(self.set, request).results[0]


def make_probe(session, ns: str) -> Probe:
    probe = session.add(Probe(session.context, ns))
    probe.listen(Image, "depth/image_rect")
    probe.publisher(Image, "image")
    probe.publisher(CameraInfo, "camera_info")
    return probe


def send(probe: Probe, rgb, kitti_annotated) -> int:
    stamp = next_stamp()
    probe.publishers_["camera_info"].publish(camera_info(kitti_annotated, stamp))
    probe.publishers_["image"].publish(convert.rgb_to_image(rgb, "rgb8", convert.make_header(FRAME_ID, stamp)))
    return stamp


def answered(probe: Probe, rgb, kitti_annotated, timeout: float) -> bool:
    return probe.wait_stamp("depth/image_rect", send(probe, rgb, kitti_annotated), timeout) is not None


def test_a_manager_drives_the_node_through_its_lifecycle(session, kitti_annotated):
    ns = "/" + unique("managed")
    name = unique("depth_node")
    node = session.add(DepthNode(name, estimator=session.estimator, context=session.context, namespace=ns,
                                 parameter_overrides=[Parameter("autostart", value=False)]))
    probe = make_probe(session, ns)
    manager = Manager(probe, f"{ns}/{name}")
    camera = probe.publishers_["image"]

    assert manager.state() == "unconfigured" and node.estimator is None
    assert node.diagnostics().values[-1].value == "unconfigured"
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "inactive"
    assert camera.get_subscription_count() == 0  # inactive: not subscribed to the camera
    assert not answered(probe, session.rgb, kitti_annotated, 2.0)  # a frame while inactive is not answered

    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.state() == "active"
    assert wait_until(lambda: camera.get_subscription_count() == 1, 20.0)
    assert answered(probe, session.rgb, kitti_annotated, 30.0)
    assert "lifecycle_state" in {kv.key for kv in node.diagnostics().values}

    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    assert manager.state() == "inactive"
    assert wait_until(lambda: camera.get_subscription_count() == 0, 20.0)  # the camera's bandwidth is freed
    answers = len(probe.received["depth/image_rect"])
    assert not answered(probe, session.rgb, kitti_annotated, 2.0)
    assert len(probe.received["depth/image_rect"]) == answers

    assert manager.transition(Transition.TRANSITION_CLEANUP)
    assert manager.state() == "unconfigured" and node.estimator is None and node.outputs is None
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert wait_until(lambda: camera.get_subscription_count() == 1, 20.0)
    assert answered(probe, session.rgb, kitti_annotated, 30.0)

    assert manager.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert manager.state() == "finalized"
    assert wait_until(lambda: camera.get_subscription_count() == 0, 20.0)


def test_configure_with_bad_weights_fails_and_a_corrected_parameter_configures(session, kitti_annotated, tmp_path):
    ns = "/" + unique("badweights")
    name = unique("depth_node")
    missing = str(tmp_path / "no_such_checkpoint.pth")
    node = session.add(DepthNode(name, context=session.context, namespace=ns, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("weights", value=missing),
        Parameter("backend", value="torch"), Parameter("diagnostics_period", value=0.2)]))
    probe = make_probe(session, ns)
    manager = Manager(probe, f"{ns}/{name}")

    assert not manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "unconfigured"  # still up, still answering
    status = node.diagnostics()
    assert status.level == status.ERROR and "configure failed" in status.message
    assert "no_such_checkpoint" in status.message

    result = manager.set_parameter("weights", "meter-xxs-kitti")  # allowed while unconfigured
    assert result.successful, result.reason
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "inactive"
    result = manager.set_parameter("weights", "none")  # not while configured
    assert not result.successful and "read-only" in result.reason
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert answered(probe, session.rgb, kitti_annotated, 60.0)


def test_the_scan_and_the_capped_cloud_of_a_real_frame(session, kitti_annotated):
    """The scan's beams span the camera's horizontal field of view (from its intrinsics), one per
    column; its ranges are within the network's accuracy of the scan of the ground truth; no point of
    the cloud lies beyond cloud_max_range."""
    ns = "/" + unique("scan")
    cap = 15.0
    session.add(DepthNode(unique("depth_node"), estimator=session.estimator, context=session.context, namespace=ns,
                          parameter_overrides=[Parameter("cloud_max_range", value=cap),
                                               Parameter("cloud_stride", value=2),
                                               Parameter("scan_range_max", value=80.0),
                                               Parameter("scan_frame", value="camera_link")]))
    probe = make_probe(session, ns)
    probe.listen(LaserScan, "scan")
    probe.listen(PointCloud2, "points")
    assert wait_until(lambda: probe.count_publishers(f"{ns}/scan") == 1
                      and probe.publishers_["image"].get_subscription_count() == 1, 20.0)
    stamp = send(probe, session.rgb, kitti_annotated)
    scan = probe.wait_stamp("scan", stamp)
    cloud = probe.wait_stamp("points", stamp)
    assert scan is not None and cloud is not None

    k = convert.camera_info_to_intrinsics(camera_info(kitti_annotated, 0))
    width = session.rgb.shape[1]
    assert scan.header.frame_id == "camera_link" and len(scan.ranges) == width
    fov = math.atan(k.cx / k.fx) + math.atan((width - 1 - k.cx) / k.fx)
    assert scan.angle_max - scan.angle_min == pytest.approx(fov, abs=1e-6)
    assert scan.angle_max == pytest.approx(math.atan(k.cx / k.fx), abs=1e-6)  # column 0 = left = positive
    assert scan.angle_increment == pytest.approx(fov / (width - 1), abs=1e-9)

    # the ground truth's scan, built the same way from its (sparse) pixels: the node's scan is within
    # the network's accuracy of it (abs_rel of this frame ~0.07; the scan's median relative error 0.086)
    gt = read_depth_png(kitti_annotated / "groundtruth_depth" / f"{FRAME}.png")
    _, gt_scan = depth_to_scan(np.where(gt > 0, gt, np.nan), k, 10, 0.3, 80.0)
    ranges = np.asarray(scan.ranges)
    assert np.isfinite(ranges).mean() > 0.9
    both = np.isfinite(gt_scan) & np.isfinite(ranges)
    assert both.sum() > 300
    assert np.median(np.abs(ranges[both] - gt_scan[both]) / gt_scan[both]) < 0.15

    points = convert.pointcloud2_xyz(cloud).reshape(-1, 3)
    finite = points[np.isfinite(points).all(axis=1)]
    assert len(finite) > 1000
    assert np.linalg.norm(finite, axis=1).max() <= cap + 1e-3
    assert np.isnan(points).all(axis=1).sum() > 0.2 * len(points)  # the far field is gone


def test_the_nav2_costmap_example_names_the_nodes_topics_and_types(session):
    import yaml

    config = yaml.safe_load((REPO_ROOT / "config" / "nav2_depth_costmap.yaml").read_text())
    params = config["local_costmap"]["local_costmap"]["ros__parameters"]
    layer = params["obstacle_layer"]
    assert layer["plugin"] == "nav2_costmap_2d::ObstacleLayer" and "obstacle_layer" in params["plugins"]
    sources = layer["observation_sources"].split()
    assert len(sources) == 2
    node_name = unique("depth_node")
    node = session.add(DepthNode(node_name, estimator=session.estimator, context=session.context))
    published = {}
    assert wait_until(lambda: published.update(node.get_publisher_names_and_types_by_node(node_name, "/"))
                      or {"/points", "/scan"} <= set(published), 10.0)
    types = {name: kinds[0] for name, kinds in published.items()}
    seen = set()
    for source in sources:
        observation = layer[source]
        topic = observation["topic"]
        assert types[topic] == f"sensor_msgs/msg/{observation['data_type']}", (source, topic)
        assert observation["marking"] and observation["clearing"]
        assert 0 < observation["obstacle_max_range"] <= observation["raytrace_max_range"]
        seen.add(observation["data_type"])
    assert seen == {"PointCloud2", "LaserScan"}
    # the node publishes as far as the costmap clears, no farther
    from depth_attn.ros.depth_params import PARAMETERS

    depth_params = {name: p.default for name, p in PARAMETERS.items()}
    depth_params.update(config["depth_node"]["ros__parameters"])
    clearing = max(layer[s]["raytrace_max_range"] for s in sources)
    assert depth_params["cloud_max_range"] == clearing == depth_params["scan_range_max"]
