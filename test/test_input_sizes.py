"""Input sizes a network cannot take are refused where the configuration is made, naming the
nearest valid sizes: the API, the CLI and the node (which does not start, saying why)."""

from __future__ import annotations

import pytest
import torch

from depth_attn.inference import DepthEstimator, EstimatorConfig
from depth_attn.models import build_model
from depth_attn.models.meter import meter_height_ok, meter_width_ok
from depth_attn.models.registry import ConfigError, check_input_size


def test_meter_rule_matches_what_the_network_runs():
    model = build_model("meter", "tiny", "base").eval()
    for h, w in [(192, 636), (64, 192), (96, 160), (128, 416), (160, 512), (192, 320), (375, 1242)]:
        try:
            with torch.no_grad():
                model(torch.rand(1, 3, h, w))
            runs = True
        except (RuntimeError, ValueError):
            runs = False
        assert runs == (meter_height_ok(h) and meter_width_ok(w)), (h, w)


def test_api_names_the_nearest_valid_sizes():
    check_input_size("meter", (192, 636))
    check_input_size("pixelformer", (352, 1216))
    with pytest.raises(ConfigError) as bad:
        DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", input_hw=(96, 160)))
    message = str(bad.value)
    assert "meter cannot take input 96x160" in message and "nearest valid sizes" in message
    assert "64x128" in message
    for size in message.split("nearest valid sizes: ")[1].split(", "):
        h, w = (int(v) for v in size.split("x"))
        check_input_size("meter", (h, w))
    with pytest.raises(ConfigError, match="multiple of 32.*352x1216"):
        check_input_size("newcrfs", (350, 1200))


def test_cli_refuses_with_the_message(tmp_path, capsys, kitti_annotated):
    from depth_attn.cli import main

    image = kitti_annotated / "image_02" / "0000000005.png"
    assert main(["predict", str(image), "--input-size", "96x160", "--out", str(tmp_path / "p")]) == 1
    assert "meter cannot take input 96x160" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


rclpy = pytest.importorskip("rclpy")


def test_node_does_not_start_and_says_why():
    from rclpy.parameter import Parameter
    from ros_harness import RosSession, unique

    from depth_attn.ros.depth_node import DepthNode

    session = RosSession()
    try:
        with pytest.raises(Exception) as refused:
            DepthNode(unique("depth_node"), context=session.context, parameter_overrides=[
                Parameter("input_width", value=160), Parameter("input_height", value=96)])
        assert "meter cannot take input 96x160" in str(refused.value)
    finally:
        session.close()
