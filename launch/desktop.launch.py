"""depth_node on a PC: ONNX Runtime (or PyTorch) on the CPU or a desktop GPU.

    ros2 launch depth_attn desktop.launch.py
    ros2 launch depth_attn desktop.launch.py backend:=torch device:=cuda image:=/camera/color/image_rect rviz:=true

The parameters come from ``params_file`` (default: the package's config/desktop.yaml); the
arguments below override it. Outputs: /depth/image_rect (32FC1 metres) with its sibling
/depth/camera_info, /points, /depth/image_color, /diagnostics. Without a ROS install:
`depth-attn run --config config/desktop.yaml`.
"""

from depth_attn.ros.camera_launch import camera_launch_description
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
    return camera_launch_description(ARGUMENTS, "desktop.yaml")
