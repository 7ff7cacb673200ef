"""`depth-attn run`: the ROS 2 node graph in one process, without `ros2 launch`."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "run")
    p.add_argument("--config", type=Path, required=True,
                   help="ROS 2 params YAML (e.g. config/desktop.yaml); a name that is not a file here is looked up "
                   "in the package's config folder (desktop.yaml, orin.yaml, kitti_eval.yaml)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="[NODE.]PARAM=VALUE",
                   help="override a parameter (repeatable); VALUE is YAML: 80.0 is a double, true a bool")
    p.add_argument("--remap", dest="remaps", action="append", default=[], metavar="[NODE:]FROM:=TO",
                   help="an extra rcl remapping rule (repeatable), e.g. depth_node:image:=/camera/image_raw")
    p.add_argument("--node", dest="nodes", action="append", default=None, metavar="NAME",
                   help="run only these nodes (repeatable) instead of the config's depth_attn_run.nodes")
    p.add_argument("--no-intra-process", dest="intra_process", action="store_false", default=None,
                   help="send every message between the graph's nodes through DDS (default: the nodes hand "
                   "messages to each other in-process, as rclcpp's intra-process comms do; listeners outside "
                   "the process still get them through DDS). Also depth_attn_run.intra_process: false")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: run until finished or Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    from depth_attn.ros.graph import GraphError, make_spec, run_graph
    from depth_attn.ros.transport import apply_large_data_transport

    # Camera-size images from other processes (the camera driver) need Fast DDS's large shared-memory
    # segment (config/fastdds_large_data.xml), set before rclpy starts (README; depth_attn/ros/transport.py).
    for name, value in apply_large_data_transport().items():
        print(f"depth-attn run: {name}={value} (camera-size images between processes; DEPTH_ATTN_TRANSPORT="
              "default keeps Fast DDS's defaults, =large_data its builtin mode)", file=sys.stderr)
    try:
        spec = make_spec(package_config(args.config), args.sets, args.nodes, args.remaps, args.intra_process)
        code = run_graph(spec, duration=args.duration)
    except GraphError as exc:
        print(f"depth-attn run: error: {exc}", file=sys.stderr)
        return 1
    if threading.current_thread() is threading.main_thread():  # closed: a late Ctrl-C/SIGTERM must not kill
        for sig in (signal.SIGINT, signal.SIGTERM):              # the exiting process (Python's default would)
            signal.signal(sig, signal.SIG_IGN)
    return code


def package_config(path: Path) -> Path:
    """The file as given when it exists, else the package's own config of that name (from the share
    folder of a colcon install, or the checkout), so `depth-attn run --config desktop.yaml` works anywhere."""
    from depth_attn.paths import share_dir

    if path.exists():
        return path
    shipped = share_dir() / "config" / path.name
    return shipped if shipped.is_file() else path
