"""`depth-attn run` and the graph runner (depth_attn.ros.graph) over real rclpy and DDS: the same
params file ros2 launch uses, remappings, --set overrides, finishing and closing."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from ros_harness import Probe, unique, wait_until  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from depth_attn.cli import main as cli_main  # noqa: E402
from depth_attn.imageio import read_rgb  # noqa: E402
from depth_attn.paths import REPO_ROOT  # noqa: E402
from depth_attn.ros import convert, graph  # noqa: E402

DESKTOP = REPO_ROOT / "config" / "desktop.yaml"


def test_desktop_config_runs_with_its_remappings_and_overrides(kitti_annotated):
    spec = graph.make_spec(DESKTOP, sets=["depth_node.backend=torch", "cloud_stride=4", "depth_node.cloud_rgb=false"])
    assert spec.nodes == ["depth_node"]
    with graph.Graph(spec) as g:
        node = g.nodes["depth_node"]
        assert node.get_name() == "depth_node"
        assert (node.settings.backend, node.settings.cloud_stride, node.settings.cloud_rgb) == ("torch", 4, False)
        assert node.settings.weights == "auto" and node.settings.max_depth == 80.0  # from the file
        assert node.sub_image.topic_name == "/camera/image_rect"
        assert node.sub_info.topic_name == "/camera/camera_info"
        assert node.pub_depth.topic_name == "/depth/image_rect"
        probe = Probe(g.context, "/")
        g.executor.add_node(probe)
        g.nodes["probe"] = probe  # closed with the graph, after its spinning has stopped
        probe.listen(Image, "/depth/image_rect")
        probe.listen(PointCloud2, "/points")
        image_pub = probe.publisher(Image, "/camera/image_rect")
        info_pub = probe.publisher(CameraInfo, "/camera/camera_info")
        g.start()
        assert wait_until(lambda: node.pub_points.get_subscription_count() > 0
                          and node.sub_image.get_publisher_count() > 0, 20.0)
        rgb = read_rgb(kitti_annotated / "image_02" / "0000000100.png")
        stamp = 1_234_000_000_777
        header = convert.make_header("cam_optical", stamp)
        info_pub.publish(convert.make_camera_info([721.5377, 721.5377, 609.5593, 172.854], 1242, 375, header))
        image_pub.publish(convert.rgb_to_image(rgb, "bgr8", header))
        depth = probe.wait_stamp("/depth/image_rect", stamp)
        cloud = probe.wait_stamp("/points", stamp)
        assert depth is not None and cloud is not None
        assert depth.header.frame_id == cloud.header.frame_id == "cam_optical"
        assert np.nanmax(np.abs(convert.image_to_depth(depth) - node.estimator.estimate(rgb))) <= 1e-5
        assert (cloud.height, cloud.width, cloud.point_step) == (94, 311, 12)
    assert not g.context.ok()


def test_compressed_transport_follows_the_image_remapping_and_cli_remaps_win():
    spec = graph.make_spec(DESKTOP, sets=["depth_node.image_transport=compressed", "backend=torch", "weights=''"],
                           remappings=["depth_node:camera_info:=/other/camera_info"])
    with graph.Graph(spec) as g:
        node = g.nodes["depth_node"]
        assert node.sub_image.topic_name == "/camera/image_rect/compressed"
        assert node.sub_info.topic_name == "/other/camera_info"  # the command line's rule beats the file's
        assert node.settings.weights == ""


class Ticker(Node):
    """A real node with a job: finishes after a few timer ticks (the protocol's `finished`)."""

    closed: list = []

    def __init__(self, node_name: str = "ticker", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.ticks_needed = self.declare_parameter("ticks", 3).value
        self.ticks = 0
        self.finished = threading.Event()
        self.exit_code = 3
        self.create_timer(0.02, self._tick)

    def _tick(self) -> None:
        self.ticks += 1
        if self.ticks >= self.ticks_needed:
            self.finished.set()

    def close(self) -> None:
        Ticker.closed.append((self.get_name(), self.ticks))


def test_graph_ends_when_its_finishing_nodes_finish_and_closes_them(monkeypatch, tmp_path):
    monkeypatch.setitem(graph.NODE_TYPES, "ticker", f"{__name__}:Ticker")
    config = tmp_path / "ticker.yaml"
    config.write_text("depth_attn_run:\n  ros__parameters:\n    nodes: [ticker]\n"
                      "ticker:\n  ros__parameters:\n    ticks: 5\n")
    Ticker.closed.clear()
    assert graph.run_graph(graph.make_spec(config, sets=["ticker.ticks=7"]), duration=30.0) == 3
    assert Ticker.closed and Ticker.closed[0][0] == "ticker" and Ticker.closed[0][1] >= 7
    # through the CLI, the file's value
    Ticker.closed.clear()
    assert cli_main(["run", "--config", str(config)]) == 3
    assert 5 <= Ticker.closed[0][1] < 7


def test_bad_configs_and_overrides_get_clear_errors(tmp_path, capsys):
    with pytest.raises(graph.GraphError, match="config file not found"):
        graph.make_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("depth_node:\n  backend: torch\n")  # no ros__parameters: rcl rejects it
    with pytest.raises(graph.GraphError, match="not a valid ROS 2 params file"):
        graph.make_spec(broken)
    with pytest.raises(graph.GraphError, match="unknown node 'nope'"):
        graph.make_spec(DESKTOP, nodes=["nope"])
    with pytest.raises(graph.GraphError, match="KEY=VALUE"):
        graph.make_spec(DESKTOP, sets=["backend"])
    with pytest.raises(graph.GraphError, match="not in this graph"):
        graph.make_spec(DESKTOP, sets=["eval_node.x=1"])
    assert cli_main(["run", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "config file not found" in capsys.readouterr().err


def test_a_backend_that_cannot_start_stops_with_one_clear_message(capsys):
    spec = graph.make_spec(DESKTOP, sets=["depth_node.backend=tensorrt", "depth_node.device=cuda"])
    with pytest.raises(RuntimeError, match=r"cannot start .* backend 'tensorrt'.*backend:=onnxruntime"):
        graph.Graph(spec)
    assert cli_main(["run", "--config", str(DESKTOP), "--set", "depth_node.backend=tensorrt"]) == 1
    err = capsys.readouterr().err
    assert "backend 'tensorrt'" in err and "Traceback" not in err


def test_wrong_parameter_types_are_explained():
    spec = graph.make_spec(DESKTOP, sets=["depth_node.max_depth=far", "backend=torch"])
    with pytest.raises(ValueError, match="'max_depth' must be a number .*, got a string: 'far'"):
        graph.Graph(spec)
    spec = graph.make_spec(DESKTOP, sets=["depth_node.variant=fancy", "backend=torch"])
    with pytest.raises(ValueError, match="choose one of base, meta, pyra, moh"):
        graph.Graph(spec)


def test_depth_node_console_script_fails_cleanly(capsys):
    from depth_attn.ros.depth_node import main

    assert main(["depth_node", "--ros-args", "-r", f"__node:={unique('dn')}", "-p", "backend:=tensorrt"]) == 1
    err = capsys.readouterr().err
    assert "FATAL" in err and "backend 'tensorrt'" in err


@pytest.mark.parametrize("module", ["depth_attn.ros.depth_node", "depth_attn.ros.player"])
def test_python_dash_m_runs_the_node(module, tmp_path):
    """``python -m MODULE`` runs the module as ``__main__``, a second copy of its node class: the runner
    must still start the node (here it stops on a bad parameter with its own FATAL line, not an assert)."""
    bad = ["-p", "backend:=tensorrt"] if module.endswith("depth_node") else ["-p", f"bag:={tmp_path / 'nope'}"]
    result = subprocess.run([sys.executable, "-m", module, "--ros-args", "-r", f"__node:={unique('m')}", *bad],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "FATAL" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_player_and_eval_node_console_scripts_fail_cleanly(capsys, tmp_path):
    from depth_attn.ros.eval_node import main as eval_main
    from depth_attn.ros.player import main as player_main

    missing = tmp_path / "no_such_bag"
    assert player_main(["player", "--ros-args", "-r", f"__node:={unique('pl')}", "-p", f"bag:={missing}"]) == 1
    err = capsys.readouterr().err
    assert "[player] FATAL" in err and "no_such_bag" in err and "Traceback" not in err
    assert eval_main(["eval_node", "--ros-args", "-r", f"__node:={unique('ev')}", "-p", "crop:=sideways"]) == 1
    err = capsys.readouterr().err
    assert "[eval_node] FATAL" in err and "crop" in err and "Traceback" not in err


def test_run_help_teaches_its_use(capsys):
    with pytest.raises(SystemExit):
        cli_main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--config" in out and "--set" in out and "depth_attn_run" in out and "examples" in out
    assert "--no-intra-process" in out


def test_intra_process_is_on_by_default_and_can_be_turned_off(tmp_path):
    from depth_attn.ros import intra_process

    assert graph.make_spec(DESKTOP).intra_process is True
    assert graph.make_spec(DESKTOP, intra_process=False).intra_process is False
    config = tmp_path / "dds.yaml"
    config.write_text("depth_attn_run:\n  ros__parameters:\n    nodes: [depth_node]\n    intra_process: false\n")
    assert graph.make_spec(config).intra_process is False
    assert graph.make_spec(config, intra_process=True).intra_process is True  # the flag beats the file
    for on in (True, False):
        spec = graph.make_spec(DESKTOP, sets=["depth_node.backend=torch", "depth_node.weights=none"], intra_process=on)
        with graph.Graph(spec) as g:
            bus = intra_process.bus_for(g.context)
            assert (bus is not None) == on
            publisher = g.nodes["depth_node"].pub_depth
            assert isinstance(publisher, intra_process.IntraProcessPublisher) == on
