"""The one key=value reader and the places that read through it (no ROS needed but for the runner's --set)."""

from __future__ import annotations

import pytest

from depth_attn import keyvalue


def test_assignments_are_read_as_yaml_scalars():
    assert keyvalue.parse_assignments(" intra_op_threads=2; providers = cuda,cpu;; fp16=true; x=[1, 2]; y=") == {
        "intra_op_threads": 2, "providers": "cuda,cpu", "fp16": True, "x": "[1, 2]", "y": ""}
    assert keyvalue.split_assignment("depth_node.weights=a=b.pth") == ("depth_node.weights", "a=b.pth")
    for bad in ("novalue", "=2", " = 2"):
        with pytest.raises(ValueError, match=f"expected KEY=VALUE, got {bad!r}"):
            keyvalue.split_assignment(bad)


def test_every_key_value_option_goes_through_it():
    from depth_attn.training.config import TrainConfigError, set_override

    raw = {}
    set_override(raw, "schedule.lr = 0.0001")
    assert raw == {"schedule": {"lr": 0.0001}}
    with pytest.raises(TrainConfigError, match="--set expected key=value, got 'schedule.lr'"):
        set_override(raw, "schedule.lr")
    pytest.importorskip("rclpy")
    from depth_attn.ros.depth_params import parse_backend_options
    from depth_attn.ros.graph import GraphError, parse_set

    assert parse_backend_options("intra_op_threads=2; providers=cuda,cpu") == {"intra_op_threads": 2,
                                                                              "providers": "cuda,cpu"}
    with pytest.raises(ValueError, match="backend_options: expected key=value, got 'threads'"):
        parse_backend_options("threads")
    assert parse_set(["depth_node.backend=torch", "max_depth=60.0"], ["depth_node"]) == [
        "depth_node:backend:=torch", "max_depth:=60.0"]
    with pytest.raises(GraphError, match="--set expected KEY=VALUE or NODE.PARAM=VALUE, got 'backend'"):
        parse_set(["backend"], ["depth_node"])
