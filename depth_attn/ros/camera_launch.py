"""The launch description behind desktop.launch.py and orin.launch.py: depth_node on a camera.

Each launch file keeps its own ARGUMENTS table (name, default, description: what differs between a
PC and a Jetson, and what `--show-args` lists) and its params file; the graph is built here once.
"""

from typing import Sequence, Tuple

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from depth_attn.ros.transport import large_data_environment
from launch import LaunchDescription


def camera_launch_description(arguments: Sequence[Tuple[str, str, str]], params_file: str) -> LaunchDescription:
    """depth_node (+ RViz when rviz:=true) with ``arguments`` declared and ``config/<params_file>`` as params_file."""
    share = FindPackageShare("depth_attn")
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in arguments]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", params_file]),
        description="ROS 2 params file for depth_node"))
    image = LaunchConfiguration("image")
    camera_info = LaunchConfiguration("camera_info")
    reliability = LaunchConfiguration("image_reliability")
    depth_node = Node(
        package="depth_attn",
        executable="depth_node",
        name="depth_node",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {  # after the params file, so a launch argument beats it
                "variant": LaunchConfiguration("variant"),
                "network": LaunchConfiguration("network"),
                "size": LaunchConfiguration("size"),
                "placement": LaunchConfiguration("placement"),
                "backend": LaunchConfiguration("backend"),
                "precision": LaunchConfiguration("precision"),
                "device": LaunchConfiguration("device"),
                "weights": LaunchConfiguration("weights"),
                "image_transport": LaunchConfiguration("image_transport"),
                # ROS 2 QoS overrides of the camera subscriptions, named by their (remapped) topics
                ("qos_overrides.", image, ".subscription.reliability"): reliability,
                ("qos_overrides.", image, "/compressed.subscription.reliability"): reliability,
                ("qos_overrides.", camera_info, ".subscription.reliability"): reliability,
            },
        ],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"]), ("camera_info", camera_info)],
    )
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
    return LaunchDescription(transport + declared + [depth_node, rviz])
