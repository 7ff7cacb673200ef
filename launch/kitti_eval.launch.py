"""The KITTI evaluation graph: a bag with ground truth -> depth_node -> eval_node (+ optional RViz).

    ros2 launch depth_attn kitti_eval.launch.py bag:=out/demo/kitti_bag
    ros2 launch depth_attn kitti_eval.launch.py bag:=BAG backend:=torch frame_rate:=10.0 rviz:=true
    ros2 launch depth_attn kitti_eval.launch.py bag:=BAG player:=ros2bag     # `ros2 bag play` instead
    ros2 launch depth_attn kitti_eval.launch.py bag:=BAG use_sim_time:=true  # the nodes on the player's /clock

Parameters come from ``params_file`` (default: the package's config/kitti_eval.yaml, which lists
what differs from the nodes' defaults); an argument given beats it, an argument left out leaves it
alone (`--show-args` lists them). The default player (the package's rclpy player, restamping) stamps every frame
with its send time, so eval_node's latency is end to end; `ros2 bag play` keeps the recorded stamps
(accuracy is right, latency is not). The launch ends by itself once eval_node has written its summary
(or the player failed). Without a ROS install: `depth-attn run --config config/kitti_eval.yaml`.
"""

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from depth_attn.ros.launch_given import UNSET, arguments_given, parameters_given
from depth_attn.ros.transport import large_data_environment
from launch import LaunchDescription

IMAGE = "/kitti/camera_color_left/image_raw"
CAMERA_INFO = "/kitti/camera_color_left/camera_info"
GROUND_TRUTH = "/kitti/depth/ground_truth"

_UNSET_TEXT = "; unset: the params file's value, else the node's default"
ARGUMENTS = (  # bag and rate keep a default for `ros2 bag play`; the depth_attn player gets them only when given
    ("bag", "out/demo/kitti_bag", "the bag to play (from `depth-attn kitti2bag`)"),
    ("player", "depth_attn", "depth_attn (rclpy player, restamps) | ros2bag (`ros2 bag play`)"),
    ("frame_rate", UNSET, "frames per second for the depth_attn player (0 = the bag's timing)" + _UNSET_TEXT),
    ("rate", "1.0", "playback speed factor"),
    ("backend", UNSET, "what runs the network: onnxruntime | torch" + _UNSET_TEXT),
    ("weights", UNSET, "auto (the checkpoint covering the configuration), a checkpoint name or a .pth file"
     + _UNSET_TEXT),
    ("device", UNSET, "cpu, cuda or cuda:N" + _UNSET_TEXT),
    ("variant", UNSET, "attention variant: base | meta | pyra | moh" + _UNSET_TEXT),
    ("size", UNSET, "network size: tiny | base | large" + _UNSET_TEXT),
    ("out_dir", UNSET, "where eval_node writes frames.csv, summary.json, frames.png" + _UNSET_TEXT),
    ("crop", UNSET, "evaluated region: none | garg | eigen" + _UNSET_TEXT),
    ("rviz", "false", "start RViz with config/depth_attn.rviz (and publish the cloud and coloured depth it shows)"),
    ("use_sim_time", "false", "true: the nodes follow /clock, which the player then publishes (40 Hz, as "
     "`ros2 bag play --clock`)"),
)
# node -> {parameter: the launch argument that sets it, when given}
GIVEN = {
    "eval_node": {"out_dir": "out_dir", "crop": "crop"},
    "depth_node": {"backend": "backend", "weights": "weights", "device": "device", "variant": "variant", "size": "size",
                   "publish_cloud": "rviz", "publish_color": "rviz"},  # the cloud and coloured depth: what RViz shows
    "player": {"bag": "bag", "frame_rate": "frame_rate", "rate": "rate"},
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("depth_attn")
    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in ARGUMENTS]
    arguments.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", "kitti_eval.yaml"]),
        description="ROS 2 params file for depth_node and eval_node"))
    record_given, given = arguments_given({arg for names in GIVEN.values() for arg in names.values()})
    params_file = LaunchConfiguration("params_file")

    def nodes(context):
        sim_time = LaunchConfiguration("use_sim_time").perform(context).strip().lower() in ("true", "1")
        on_clock = {"use_sim_time": True} if sim_time else {}
        eval_node = Node(
            package="depth_attn", executable="eval_node", name="eval_node", output="screen",
            parameters=[params_file, parameters_given(given, GIVEN["eval_node"]), on_clock],
            remappings=[("depth/image_rect", "/depth/image_rect"), ("depth/timing", "/depth/timing"),
                        ("ground_truth", GROUND_TRUTH)],
            sigterm_timeout="30",  # after Ctrl-C it still writes summary.json and plots frames.png (launch's: 5 s)
        )
        depth_node = Node(
            package="depth_attn", executable="depth_node", name="depth_node", output="screen",
            parameters=[params_file, parameters_given(given, GIVEN["depth_node"]), {
                # a lossless replay: the player publishes reliable, and Fast DDS drops best-effort frames
                # of ~1 MB between processes (standard ROS 2 QoS overrides of the camera subscriptions)
                "qos_overrides./kitti/camera_color_left/image_raw.subscription.reliability": "reliable",
                "qos_overrides./kitti/camera_color_left/camera_info.subscription.reliability": "reliable",
            }, on_clock],
            remappings=[("image", IMAGE), ("image/compressed", IMAGE + "/compressed"), ("camera_info", CAMERA_INFO)],
        )
        player = Node(  # its other parameters (restamp, waiting for subscribers) from the params file's player section
            package="depth_attn", executable="player", name="player", output="screen",
            parameters=[params_file, parameters_given(given, GIVEN["player"],
                                                      {"bag": str, "frame_rate": float, "rate": float}),
                        {"clock": 40.0} if sim_time else {}],  # /clock for the nodes, as `ros2 bag play --clock`
            condition=player_is("depth_attn"),
        )
        bag_play = ExecuteProcess(
            cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate")]
            + (["--clock"] if sim_time else []),
            output="screen", condition=player_is("ros2bag"),
        )
        # The run ends by itself: when eval_node has written its summary, or when the player fails (a bag
        # that is missing or damaged), everything else is stopped (SIGINT: every node closes cleanly).
        done = RegisterEventHandler(OnProcessExit(target_action=eval_node, on_exit=[
            LogInfo(msg="eval_node finished: stopping the graph"),
            EmitEvent(event=Shutdown(reason="evaluation done"))]))
        failed = RegisterEventHandler(OnProcessExit(target_action=player, on_exit=_stop_if_failed))
        return [eval_node, depth_node, player, bag_play, done, failed]

    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "depth_attn.rviz"]),
                   "-f", "kitti_camera_color_left_optical_frame"],
        remappings=[("/camera/image_rect", IMAGE)],  # the config's camera display shows the bag's camera
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    # Camera-size images between processes (camera driver -> depth node -> consumers): Fast DDS's
    # large shared-memory segment (config/fastdds_large_data.xml) in every node started here (README).
    transport = [SetEnvironmentVariable(k, v) for k, v in large_data_environment().items()]
    return LaunchDescription(transport + [record_given] + arguments + [OpaqueFunction(function=nodes), rviz])


def player_is(name: str) -> IfCondition:
    """player:=NAME (Humble has no EqualsSubstitution; LaunchConfigurationEquals is deprecated since)."""
    return IfCondition(PythonExpression(["'", LaunchConfiguration("player"), f"' == '{name}'"]))


def _stop_if_failed(event, context):
    if event.returncode:
        return [LogInfo(msg=f"the player failed (exit code {event.returncode}): stopping the graph"),
                EmitEvent(event=Shutdown(reason="player failed"))]
    return None
