"""depth_node on a PC: ONNX Runtime (or PyTorch) on the CPU or a desktop GPU.

    ros2 launch depth_attn desktop.launch.py
    ros2 launch depth_attn desktop.launch.py backend:=torch device:=cuda image:=/camera/color/image_rect rviz:=true

The parameters come from ``params_file`` (default: the package's config/desktop.yaml); the
arguments below override it. Outputs: /depth/image_rect (32FC1 metres) with its sibling
/depth/camera_info, /points, /depth/image_color, /diagnostics. Without a ROS install:
`depth-attn run --config config/desktop.yaml`.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from depth_attn.ros.transport import large_data_environment
from launch import LaunchDescription

ARGUMENTS = (
    ("variant", "base", "attention variant: base | meta | pyra | moh"),
    ("network", "meter", "depth network: meter | pixelformer | newcrfs"),
    ("size", "tiny", "network size: tiny | base | large"),
    ("placement", "full", "where the variant goes: full | encoder | decoder"),
    ("backend", "onnxruntime", "what runs the network: onnxruntime | torch"),
    ("precision", "fp32", "numeric precision: fp32 | fp16 (GPU only)"),
    ("device", "cpu", "cpu, cuda or cuda:N"),
    ("weights", "auto", "auto (the checkpoint covering network/size/variant/placement), a name from "
                        "`depth-attn weights list`, or a .pth file"),
    ("image_transport", "raw", "raw (sensor_msgs/Image on IMAGE) or compressed (IMAGE/compressed)"),
    ("image_reliability", "best_effort", "QoS of the camera subscriptions: best_effort (matches any camera) | "
                                         "reliable (for a reliable publisher, e.g. a bag: no frame lost; Fast DDS "
                                         "drops best-effort frames of ~1 MB between processes)"),
    ("image", "/camera/image_rect", "camera image topic (rectified)"),
    ("camera_info", "/camera/camera_info", "camera info topic"),
    ("camera_frame", "camera_optical_frame", "the camera's optical frame: RViz's fixed frame"),
    ("rviz", "false", "start RViz with config/depth_attn.rviz"),
)


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("depth_attn")
    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in ARGUMENTS]
    arguments.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", "desktop.yaml"]),
        description="ROS 2 params file for depth_node"))
    image = LaunchConfiguration("image")
    reliability = LaunchConfiguration("image_reliability")
    depth_node = Node(
        package="depth_attn",
        executable="depth_node",
        name="depth_node",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
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
                ("qos_overrides.", LaunchConfiguration("camera_info"), ".subscription.reliability"): reliability,
            },
        ],
        remappings=[
            ("image", image),
            ("image/compressed", [image, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
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
    return LaunchDescription(transport + arguments + [depth_node, rviz])
