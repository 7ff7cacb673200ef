"""`depth-attn play`: publish a bag's topics in real time with rclpy (no `ros2 bag play` needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depth_attn.cli.common import add_command

EPILOG = """examples:
  depth-attn play out/demo/kitti_bag --restamp                 # as recorded, stamps = send time
  depth-attn play out/demo/kitti_bag --frame-rate 10 --loop    # 10 frames/s, over and over
  depth-attn play BAG --topics /kitti/camera_color_left/image_raw /kitti/camera_color_left/camera_info \\
      --remap /kitti/camera_color_left/image_raw:=/camera/image_raw

A frame is all messages of one recorded time; --restamp gives all of them the same new stamp, so a
depth node's output (which keeps its input's stamp) can be matched to the ground truth by exact stamp
and the latency measured end to end (receive time - stamp). Messages whose type is not installed here
(e.g. /tf_static without tf2_msgs) are skipped with a warning."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "play", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bag", type=Path, help="the bag folder (or its .mcap / .db3 file)")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor, 1.0 = as recorded (default: 1.0)")
    p.add_argument("--frame-rate", type=float, default=0.0, metavar="HZ",
                   help="frames per second, replacing the bag's timing (default: the bag's timing)")
    p.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    p.add_argument("--repeat", type=int, default=1, help="play this many times (default: 1)")
    p.add_argument("--restamp", action="store_true", help="set header stamps to the send time, one per frame")
    p.add_argument("--topics", nargs="+", default=None, help="play only these topics (default: all)")
    p.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="rename a topic (repeatable)")
    p.add_argument("--no-wait", action="store_true", help="start at once, without waiting for subscribers")
    p.add_argument("--best-effort", action="store_true", help="publish best effort instead of reliable")
    p.add_argument("--clock", type=float, nargs="?", const=40.0, default=0.0, metavar="HZ",
                   help="publish the playback time on /clock (default rate 40 Hz, as `ros2 bag play --clock`), for "
                   "nodes run with use_sim_time:=true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_attn.ros.player import play

    if not args.bag.exists():
        raise FileNotFoundError(f"bag not found: {args.bag}")
    params = {
        "bag": str(args.bag), "rate": float(args.rate), "frame_rate": float(args.frame_rate),
        "loop": args.loop, "repeat": int(args.repeat), "restamp": args.restamp,
        "wait_for_subscribers": not args.no_wait, "reliability": "best_effort" if args.best_effort else "reliable",
        "clock": float(args.clock),
    }
    cli_args = ["--ros-args"]
    for name, value in params.items():
        if isinstance(value, bool):
            text = str(value).lower()
        else:
            text = repr(value) if isinstance(value, float) else str(value)
        cli_args += ["-p", f"{name}:={text}"]
    if args.topics:
        cli_args += ["-p", "topics:=[" + ",".join(f"'{t}'" for t in args.topics) + "]"]
    for rule in args.remap:
        cli_args += ["-r", rule]
    return play(cli_args)
