"""The Humble code path (depth_attn.ros.compat's fallbacks, forced with DEPTH_ATTN_ROS_FALLBACKS=1 on
this newer rclpy) gives `depth-attn run` the same graph and the same parameters as the newer path."""

from __future__ import annotations

import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import parameter_value_to_python  # noqa: E402

from depth_attn.cli import main as cli_main  # noqa: E402
from depth_attn.paths import REPO_ROOT  # noqa: E402
from depth_attn.ros import compat, graph  # noqa: E402

CONFIGS = [REPO_ROOT / "config" / name for name in ("kitti_eval.yaml", "desktop.yaml", "orin.yaml")]
KITTI_EVAL = CONFIGS[0]


@pytest.fixture
def humble_path(monkeypatch):
    monkeypatch.setenv(compat.FORCE_FALLBACKS, "1")


def both_paths(monkeypatch, build):
    """``build()`` on the newer path, then with the fallbacks forced."""
    monkeypatch.delenv(compat.FORCE_FALLBACKS, raising=False)
    newer = build()
    monkeypatch.setenv(compat.FORCE_FALLBACKS, "1")
    return newer, build()


def test_the_newer_api_is_here_and_forcing_takes_the_fallback(monkeypatch):
    """Otherwise the comparisons below would compare one path with itself."""
    monkeypatch.delenv(compat.FORCE_FALLBACKS, raising=False)
    assert compat.newer("rclpy.parameter", "parameter_dict_from_yaml_file") is not None
    monkeypatch.setenv(compat.FORCE_FALLBACKS, "1")
    assert compat.newer("rclpy.parameter", "parameter_dict_from_yaml_file") is None


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_run_configs_make_the_same_graph_on_both_paths(monkeypatch, config):
    newer, humble = both_paths(monkeypatch, lambda: graph.make_spec(config, sets=["max_depth=60.0"]))
    assert humble == newer  # nodes, remappings, intra_process, and so the rcl arguments every node gets
    assert humble.cli_args() == newer.cli_args()
    assert humble.nodes and humble.remappings


def test_the_fallback_reads_every_section_as_the_file_says(humble_path):
    """Each node section of kitti_eval.yaml, read by the Humble path, against PyYAML's reading of the
    file (names flattened with '.', the types YAML gives: 80.0 a double, 0 an integer, a list of strings)."""
    document = yaml.safe_load(KITTI_EVAL.read_text())
    for section, body in document.items():
        params = compat.parameters_from_yaml_file(KITTI_EVAL, [section])
        got = {name: parameter_value_to_python(msg.value) for name, msg in params.items()}
        assert got == body["ros__parameters"], section
        assert all(type(got[k]) is type(v) for k, v in body["ros__parameters"].items()), section
    with pytest.raises(RuntimeError):
        compat.parameters_from_yaml_file(KITTI_EVAL, ["not_in_the_file"])


def test_depth_attn_run_kitti_eval_gives_its_nodes_the_same_parameters_on_both_paths(monkeypatch, tmp_path):
    """The eval node of `depth-attn run --config config/kitti_eval.yaml`, started by the graph runner over
    real rclpy on each path: rcl hands it the same parameters, which are the file's."""
    def started():
        spec = graph.make_spec(KITTI_EVAL, nodes=["eval_node"], sets=[f"eval_node.out_dir={tmp_path}"])
        with graph.Graph(spec) as g:
            node = g.nodes["eval_node"]
            values = {name: node.get_parameter(name).value for name in node._parameters}
            topics = sorted(sub.topic_name for sub in node.subscriptions)
        return values, topics

    (newer, newer_topics), (humble, humble_topics) = both_paths(monkeypatch, started)
    assert humble == newer and humble_topics == newer_topics
    expected = dict(yaml.safe_load(KITTI_EVAL.read_text())["eval_node"]["ros__parameters"], out_dir=str(tmp_path))
    assert {k: humble[k] for k in expected} == expected
    assert "/kitti/depth/ground_truth" in humble_topics  # the file's remapping reached the node
    code = cli_main(["run", "--config", str(KITTI_EVAL), "--node", "eval_node",
                     "--set", f"eval_node.out_dir={tmp_path / 'cli'}", "--duration", "0.5"])
    assert code == 0
