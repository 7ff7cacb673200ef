"""The launch description behind desktop.launch.py and orin.launch.py: depth_node on a camera.

Both launch files share ``ARGUMENTS`` (what `--show-args` lists) and differ only in their params file
(config/desktop.yaml, config/orin.yaml: what a PC and a Jetson run). Precedence, as a ROS 2 user
expects it: a launch argument given > the params file > depth_node's own defaults. So a depth_node
parameter argument (``NODE_ARGUMENTS``) is passed to the node only when the user gave it; left out,
the params file (or the node's default) decides.
"""

from pathlib import Path
from typing import Dict, Set, Tuple

import yaml
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from depth_attn.ros.launch_given import UNSET, arguments_given, parameters_given
from depth_attn.ros.transport import large_data_environment
from launch import LaunchDescription

# (name, default, description); the first block are depth_node parameters of the same name
ARGUMENTS: Tuple[Tuple[str, str, str], ...] = (
    ("variant", UNSET, "attention variant: base | meta | pyra | moh"),
    ("network", UNSET, "depth network: meter | pixelformer | newcrfs"),
    ("size", UNSET, "network size: tiny | base | large"),
    ("placement", UNSET, "where the variant goes: full | encoder | decoder"),
    ("backend", UNSET, "what runs the network: auto (TensorRT with a CUDA GPU, else OpenVINO on x86, else ONNX "
                       "Runtime) | tensorrt (Jetson) | openvino | onnxruntime | torch"),
    ("precision", UNSET, "numeric precision: fp32 | fp16 (GPU) | int8"),
    ("device", UNSET, "cpu, cuda or cuda:N"),
    ("weights", UNSET, "auto (the checkpoint covering network/size/variant/placement), a name from "
                       "`depth-attn weights list`, a .pth file, or none (untrained: timing only)"),
    ("image_transport", UNSET, "raw (sensor_msgs/Image on IMAGE) or compressed (IMAGE/compressed)"),
    ("image_reliability", UNSET, "QoS of the camera subscriptions: best_effort (matches any camera; the node's "
                                 "default) | reliable (for a reliable publisher, e.g. a bag: no frame lost; Fast DDS "
                                 "drops best-effort frames of ~1 MB between processes)"),
    ("autostart", UNSET, "true: depth_node configures and activates itself at start; false: it waits unconfigured "
                         "for a lifecycle manager (Nav2's lifecycle_manager with bond_timeout: 0.0, or `ros2 "
                         "lifecycle set /depth_node configure`, then activate)"),
    ("image", "/camera/image_rect", "camera image topic (rectified)"),
    ("camera_info", "/camera/camera_info", "camera info topic"),
    ("camera_frame", "camera_optical_frame", "the camera's optical frame: RViz's fixed frame"),
    ("rviz", "false", "start RViz with config/depth_attn.rviz"),
)
NODE_ARGUMENTS = ("variant", "network", "size", "placement", "backend", "precision", "device", "weights",
                  "image_transport", "autostart")


def _package_values(config: Path) -> Dict[str, object]:
    """depth_node's parameters in the package's params file (what `--show-args` says an unset argument gives)."""
    try:
        return yaml.safe_load(config.read_text())["depth_node"]["ros__parameters"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}


def _described(name: str, default: str, text: str, params_file: str, package: Dict[str, object]) -> str:
    if default != UNSET:
        return text
    if name == "image_reliability":
        return f"{text}; unset: the params file's qos_overrides"
    value = package.get(name)
    return (f"{text}; unset: the params file's value ({params_file}: {value})" if value is not None
            else f"{text}; unset: the params file's value, else depth_node's default")


def given_parameters(given: Set[str]) -> Dict[object, object]:
    """depth_node's parameters from the launch arguments in ``given`` (those the user set)."""
    image, camera_info = LaunchConfiguration("image"), LaunchConfiguration("camera_info")
    parameters: Dict[object, object] = parameters_given(given, {name: name for name in NODE_ARGUMENTS})
    if "image_reliability" in given:  # ROS 2 QoS overrides of the camera subscriptions, by their remapped topics
        reliability = LaunchConfiguration("image_reliability")
        for topic in ((image,), (image, "/compressed"), (camera_info,)):
            parameters[("qos_overrides.", *topic, ".subscription.reliability")] = reliability
    return parameters


def camera_launch_description(params_file: str, launch_file: str) -> LaunchDescription:
    """depth_node (+ RViz when rviz:=true) with ``ARGUMENTS`` declared and ``config/<params_file>`` as
    params_file; ``launch_file``: the calling launch file's path (its package's config/ is beside it)."""
    share = FindPackageShare("depth_attn")
    package = _package_values(Path(launch_file).parent.parent / "config" / params_file)
    record_given, given = arguments_given(name for name, default, _ in ARGUMENTS if default == UNSET)
    declared = [DeclareLaunchArgument(name, default_value=default,
                                      description=_described(name, default, text, params_file, package))
                for name, default, text in ARGUMENTS]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", params_file]),
        description="ROS 2 params file for depth_node"))
    image = LaunchConfiguration("image")
    camera_info = LaunchConfiguration("camera_info")

    def depth_node(context: LaunchContext):
        return [Node(
            package="depth_attn",
            executable="depth_node",
            name="depth_node",
            output="screen",
            parameters=[LaunchConfiguration("params_file"), given_parameters(given)],
            remappings=[("image", image), ("image/compressed", [image, "/compressed"]),
                        ("camera_info", camera_info)],
        )]

    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "depth_attn.rviz"]),
                   "-f", LaunchConfiguration("camera_frame")],
        remappings=[("/camera/image_rect", image)],  # the config's camera display shows this launch's camera
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    # Camera-size images between processes (camera driver -> depth node -> consumers): Fast DDS's
    # large shared-memory segment (config/fastdds_large_data.xml) in every node started here (README).
    transport = [SetEnvironmentVariable(k, v) for k, v in large_data_environment().items()]
    return LaunchDescription(transport + [record_given] + declared
                             + [OpaqueFunction(function=depth_node), rviz])
