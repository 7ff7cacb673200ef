"""depth_node on a PC: backend auto (TensorRT with a CUDA GPU and TensorRT, else OpenVINO on an x86 CPU,
else ONNX Runtime; the node logs which and why, and /diagnostics says so), or the one you name.

    ros2 launch depth_attn desktop.launch.py
    ros2 launch depth_attn desktop.launch.py backend:=openvino precision:=int8 params_file:=my_robot.yaml
    ros2 launch depth_attn desktop.launch.py backend:=torch device:=cuda image:=/camera/color/image_rect rviz:=true
    ros2 launch depth_attn desktop.launch.py params_file:=my_robot.yaml

The parameters come from ``params_file`` (default: the package's config/desktop.yaml, which lists what
differs from depth_node's defaults); an argument given beats it, an argument left out leaves it alone
(`--show-args` lists them). Outputs: /depth/image_rect (32FC1 metres) with its sibling
/depth/camera_info, /points, /depth/image_color, /diagnostics. Without a ROS install:
`depth-attn run --config config/desktop.yaml`.
"""

from depth_attn.ros.camera_launch import camera_launch_description
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return camera_launch_description("desktop.yaml", __file__)
