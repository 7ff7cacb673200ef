"""depth_node on a Jetson Orin: TensorRT fp16, METER-tiny with Meta attention by default.

    ros2 launch depth_attn orin.launch.py
    ros2 launch depth_attn orin.launch.py variant:=pyra precision:=int8 image:=/cam/image_rect rviz:=true
    ros2 launch depth_attn orin.launch.py backend:=onnxruntime device:=cpu precision:=fp32   # no CUDA here
    ros2 launch depth_attn orin.launch.py params_file:=my_robot.yaml

The parameters come from ``params_file`` (default: the package's config/orin.yaml, which lists what
differs from depth_node's defaults); an argument given beats it, an argument left out leaves it alone
(`--show-args` lists them). Outputs: /depth/image_rect (32FC1 metres) with its sibling
/depth/camera_info, /points, /depth/image_color, /diagnostics.
"""

from depth_attn.ros.camera_launch import camera_launch_description
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return camera_launch_description("orin.yaml", __file__)
