"""ROS 2 shell of depth_attn: the only package that imports rclpy and ROS messages.

- ``convert``: messages <-> numpy, the PointCloud2 builder.
- ``depth_node``: camera in, metric depth, point cloud, colour depth and diagnostics out.
- ``graph``: runs several nodes in one process (``depth-attn run``); the protocol is in its docstring.
"""
