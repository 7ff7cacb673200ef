"""depth_node on a Jetson Orin: TensorRT fp16, METER-tiny with Meta attention by default.

    ros2 launch depth_attn orin.launch.py
    ros2 launch depth_attn orin.launch.py variant:=pyra precision:=int8 image:=/cam/image_rect rviz:=true
    ros2 launch depth_attn orin.launch.py backend:=onnxruntime device:=cpu precision:=fp32   # no CUDA here

The parameters come from ``params_file`` (default: the package's config/orin.yaml); the model
arguments below override it. Outputs: /depth/image_rect (32FC1 metres) with its sibling
/depth/camera_info, /points, /depth/image_color, /diagnostics.
"""

from depth_attn.ros.camera_launch import camera_launch_description
from launch import LaunchDescription

ARGUMENTS = (
    ("variant", "meta", "attention variant: base | meta | pyra | moh"),
    ("network", "meter", "depth network: meter | pixelformer | newcrfs"),
    ("size", "tiny", "network size: tiny | base | large"),
    ("placement", "full", "where the variant goes: full | encoder | decoder"),
    ("backend", "tensorrt", "what runs the network: tensorrt | onnxruntime | torch"),
    ("precision", "fp16", "numeric precision: fp16 | fp32 | int8"),
    ("device", "cuda", "cuda, cuda:N, or cpu (with backend:=onnxruntime or torch, on a machine without CUDA)"),
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
    return camera_launch_description(ARGUMENTS, "orin.yaml")
