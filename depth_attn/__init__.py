"""depth_attn: efficient-attention monocular metric depth for ROS 2.

The core (this package minus ``depth_attn.ros``) never imports ROS.
"""

__version__ = "0.1.0"
