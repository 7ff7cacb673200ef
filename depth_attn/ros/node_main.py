"""The ``main`` of every node executable (depth_node, eval_node, player): one node in its own process.

Signals first (``StopSignals``, before ``rclpy.init``), then the node; a node that cannot start prints
one FATAL line (no traceback) and exits 1. A node with a ``finished`` event (the eval node, the
player) is spun until it sets it; the others until Ctrl-C/SIGTERM. Then it is closed cleanly and the
process exits with the node's ``exit_code`` (0 where it has none)."""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from depth_attn.ros.stop_signals import StopSignals


def run_node(make_node: Callable[[], object], label: str, args: Optional[Sequence[str]] = None) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    try:
        from rclpy.executors import ExternalShutdownException
    except ImportError:  # older rclpy
        ExternalShutdownException = RuntimeError  # noqa: N806

    stop = StopSignals().install()  # before rclpy.init: Ctrl-C/SIGTERM end the spin, repeats are ignored
    rclpy.init(args=args)
    try:
        node = make_node()
    except Exception as exc:  # one clear message, no traceback
        if stop.received is None:  # (stopped while starting: nothing to report)
            print(f"[{label}] FATAL: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        stop.ignore_from_now()
        return 0 if stop.received is not None else 1
    executor = SingleThreadedExecutor()  # callbacks only hand work to the node's thread
    executor.add_node(node)
    finished = getattr(node, "finished", None)
    code = 0
    try:
        if finished is None:
            executor.spin()
        else:
            while rclpy.ok() and not finished.is_set():
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        code = int(getattr(node, "exit_code", 0))
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
        stop.ignore_from_now()
    return code
