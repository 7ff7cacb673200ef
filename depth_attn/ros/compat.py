"""rclpy features newer than Humble's rclpy 3.3 (the Jetson's ROS), each chosen by feature, never by
distro name: where the installed rclpy has the newer function it is used, else a fallback built from
what Humble has (test/test_humble_api.py keeps every other rclpy use within Humble's API).

``DEPTH_ATTN_ROS_FALLBACKS=1`` takes every fallback even where the newer feature exists, so that a
test on a newer rclpy runs the Humble code path and compares it with the newer one.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

FORCE_FALLBACKS = "DEPTH_ATTN_ROS_FALLBACKS"


def fallbacks_forced() -> bool:
    return os.environ.get(FORCE_FALLBACKS, "").strip().lower() not in ("", "0", "false", "no")


def newer(module: str, name: str) -> Optional[Callable]:
    """``module.name`` where the installed rclpy has it and fallbacks are not forced, else None."""
    if fallbacks_forced():
        return None
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def parameters_from_yaml_file(path: Path, target_nodes: Sequence[str]) -> Dict[str, object]:
    """The ``ros__parameters`` of ``target_nodes`` in a params file as ``rcl_interfaces/Parameter``
    messages keyed by name (nested keys joined with '.'): rclpy's ``parameter_dict_from_yaml_file``
    (Iron and later), or on Humble the same from PyYAML and ``rclpy.parameter.Parameter``.

    Raises RuntimeError when no target node has parameters in the file (as rclpy's does)."""
    reader = newer("rclpy.parameter", "parameter_dict_from_yaml_file")
    if reader is not None:
        return reader(str(path), target_nodes=list(target_nodes))
    import yaml
    from rclpy.parameter import Parameter

    with open(path) as f:
        document = yaml.safe_load(f)
    if not isinstance(document, dict):
        raise RuntimeError("YAML file is not a valid ROS parameter file: no node sections")
    values: Dict[str, object] = {}
    for node in target_nodes:
        name = node.lstrip("/")
        for key in (f"/{name}", name):  # rclpy's lookup: absolute name, then the name without namespace
            section = document.get(key)
            if section is None:
                continue
            if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
                raise RuntimeError(f"YAML file is not a valid ROS parameter file for node {key}")
            values.update(section["ros__parameters"])
    if not values:
        raise RuntimeError("Param file does not contain any valid parameters")
    return {name: Parameter(name, value=value).to_parameter_msg() for name, value in _flatten(values).items()}


def _flatten(values: Dict[str, object], prefix: str = "") -> Dict[str, object]:
    out: Dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
