"""The evaluation graph over real DDS, in one process via the graph runner: player -> depth node ->
eval node with config/kitti_eval.yaml. Per frame it must give the offline metrics and a latency."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from depth_attn.evaluation import read_csv
from depth_attn.evaluation.offline import evaluate_bag
from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.metrics import METRIC_NAMES
from depth_attn.paths import REPO_ROOT

pytest.importorskip("rclpy")
from depth_attn.ros.graph import Graph, make_spec  # noqa: E402

CONFIG = REPO_ROOT / "config" / "kitti_eval.yaml"


@pytest.fixture(scope="module")
def offline_rows(kitti_bag, tmp_path_factory):
    estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti"))
    return read_csv(evaluate_bag(kitti_bag, estimator, tmp_path_factory.mktemp("offline"), progress=False).csv)


def run_graph(bag, out_dir, *extra):
    """The shipped config with the test's bag and folders; torch like the offline reference; unique
    topics so that parallel runs on one machine never meet."""
    ns = f"/t{uuid.uuid4().hex[:8]}"
    spec = make_spec(CONFIG, sets=[f"player.bag={bag}", f"eval_node.out_dir={out_dir}", "depth_node.backend=torch",
                                   "player.frame_rate=1.0", "player.start_delay=0.5", "eval_node.idle_timeout=4.0",
                                   *extra])
    spec.remappings = [rule.replace(":=/", f":={ns}/") for rule in spec.remappings]
    spec.remappings += [f"player:/kitti/camera_color_left/image_raw:={ns}/kitti/camera_color_left/image_raw",
                        f"player:/kitti/camera_color_left/camera_info:={ns}/kitti/camera_color_left/camera_info",
                        f"player:/kitti/depth/ground_truth:={ns}/kitti/depth/ground_truth",
                        f"depth_node:depth/image_rect:={ns}/depth/image_rect",
                        f"depth_node:depth/timing:={ns}/depth/timing"]
    with Graph(spec) as graph:
        code = graph.spin(duration=180.0)
        finished = graph.finished()
        player_error = graph.nodes["player"].error
    return code, finished, player_error


def test_online_metrics_equal_offline_with_latency(kitti_bag, offline_rows, kitti_annotated, tmp_path):
    out = tmp_path / "online"
    code, finished, error = run_graph(kitti_bag, out)
    assert (code, finished, error) == (0, True, None)
    rows = read_csv(out / "frames.csv")
    annotated = len(list((kitti_annotated / "groundtruth_depth").glob("*.png")))  # the frames with ground truth
    assert [r["frame"] for r in rows] == list(range(annotated))  # every annotated frame, none lost at 1 Hz
    for online, offline in zip(rows, offline_rows, strict=True):
        for name in METRIC_NAMES:
            assert online[name] == pytest.approx(offline[name], abs=1e-4), name
        assert online["valid_pixels"] == offline["valid_pixels"]
        assert 0 < online["latency_ms"] < 30_000
        assert 0 < online["network_ms"] < online["latency_ms"]  # this frame's own network time
        # where the latency went: stamp -> depth node callback, callback -> depth out (network inside), hop on
        assert 0 <= online["in_ms"] and online["network_ms"] < online["node_ms"]
        assert online["in_ms"] + online["node_ms"] < online["latency_ms"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "online"
    assert summary["frames"] == {"expected": annotated, "received": annotated, "dropped": 0}
    assert summary["metrics"]["abs_rel"] == pytest.approx(np.mean([r["abs_rel"] for r in offline_rows]), abs=1e-4)
    assert summary["latency_ms"]["p50"] > 0 and summary["network_ms"]["p50"] > 0
    assert summary["network_ms_source"] == "depth node depth/timing, per frame"
    path = summary["path_ms"]  # the medians of the rows' own columns, taken here
    for key, column in (("in_p50", "in_ms"), ("node_p50", "node_ms"), ("network_p50", "network_ms"),
                        ("latency_p50", "latency_ms")):
        assert path[key] == pytest.approx(float(np.median([r[column] for r in rows])), abs=1e-6), key
    # the depth's hop to the eval node and the node's work outside the network take time, and less than the whole
    assert 0 < path["out_p50"] < path["latency_p50"] and 0 < path["node_outside_network_p50"] < path["node_p50"]
    assert summary["model"]["model"] == "meter-tiny-base-full" and summary["model"]["backend"] == "torch"
    assert (out / "frames.png").read_bytes()[:4] == b"\x89PNG"


def test_truncated_bag_online(truncated_kitti_bag, offline_rows, tmp_path):
    mcap = truncated_kitti_bag
    damaged = mcap.parent
    out = tmp_path / "online_damaged"
    code, finished, error = run_graph(damaged, out)
    assert code == 1 and finished  # the player reports the damage; the graph still finishes
    assert str(mcap) in error
    rows = read_csv(out / "frames.csv")
    assert 1 <= len(rows) < 3
    for online, offline in zip(rows, offline_rows, strict=False):
        assert online["abs_rel"] == pytest.approx(offline["abs_rel"], abs=1e-4)
