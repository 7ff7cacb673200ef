"""Simulated time (``use_sim_time``): timers that must run on the wall clock whatever the node's clock,
and the one warning a node gives when it is told to follow /clock and nothing publishes it (its ROS
time then stands at 0: stamps of 0, timers that never fire)."""

from __future__ import annotations

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

CLOCK_TOPIC = "/clock"


def steady_timer(node: Node, period_s: float, callback, **kwargs):
    """A timer on the steady clock: it fires under ``use_sim_time`` even while no /clock is published
    (idle time-outs and watchdogs measure real seconds)."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME), **kwargs)


def warn_without_clock(node: Node, after_s: float = 10.0) -> None:
    """With ``use_sim_time`` true: one warning if, ``after_s`` seconds from now, nothing publishes /clock
    and no clock message has arrived. Not sooner: in a launch file the player's process may take several
    seconds on a loaded CPU before its /clock publisher is discovered."""
    if not node.get_parameter("use_sim_time").value:
        return
    timer = None

    def check() -> None:
        timer.cancel()
        if node.count_publishers(CLOCK_TOPIC) == 0 and node.get_clock().now().nanoseconds == 0:
            node.get_logger().warning(
                f"use_sim_time is true but nothing publishes {CLOCK_TOPIC} after {after_s:g} s: this node's time "
                "stands still (stamps of 0, timers on ROS time never fire). Play the bag with a clock "
                "(`depth-attn play --clock`, the player's clock parameter, `ros2 bag play --clock`) or set "
                "use_sim_time false")

    timer = steady_timer(node, after_s, check)
