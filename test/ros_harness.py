"""Shared helpers for the ROS 2 tests: a private rclpy context, a single-threaded executor spinning in a thread,
and a probe node that publishes camera frames (sensor-data QoS, best effort) and records what comes
back on reliable (default QoS) subscriptions."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from typing import Callable, Dict, List

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class RosSession:
    """A private context with a SingleThreadedExecutor (as the nodes' own mains and the graph runner use)
    spinning in a background thread."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(args=[], context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: List[Node] = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        for node in reversed(self.nodes):
            close = getattr(node, "close", None)
            if callable(close):
                close()
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()
        rclpy.shutdown(context=self.context)


class Probe(Node):
    """Publishes to and listens to one namespace's topics."""

    def __init__(self, context: Context, namespace: str) -> None:
        super().__init__(unique("probe"), namespace=namespace, context=context)
        self.received: Dict[str, list] = defaultdict(list)
        self.lock = threading.Condition()
        self.publishers_: Dict[str, object] = {}

    def publisher(self, msg_type, topic: str, qos=qos_profile_sensor_data):
        if topic not in self.publishers_:
            self.publishers_[topic] = self.create_publisher(msg_type, topic, qos)
        return self.publishers_[topic]

    def listen(self, msg_type, topic: str, qos=10) -> None:
        def record(msg, topic=topic):
            with self.lock:
                self.received[topic].append(msg)
                self.lock.notify_all()

        self.create_subscription(msg_type, topic, record, qos)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def find(self, topic: str, stamp_ns: int):
        from depth_attn.ros.convert import stamp_to_ns

        for msg in self.received[topic]:
            if stamp_to_ns(msg.header.stamp) == stamp_ns:
                return msg
        return None

    def wait_stamp(self, topic: str, stamp_ns: int, timeout: float = 30.0):
        self.wait_for(lambda: self.find(topic, stamp_ns) is not None, timeout)
        return self.find(topic, stamp_ns)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, period: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return predicate()


def eval_node_process(ns: str, out, *params: str) -> subprocess.Popen:
    """An eval node in its own process scoring ``ns``/depth against ``ns``/gt into ``out``; ``params``
    as ``name:=value``."""
    cmd = [sys.executable, "-m", "depth_attn.ros.eval_node", "--ros-args", "-r", f"__node:=eval_{ns[2:]}",
           "-r", f"depth/image_rect:={ns}/depth", "-r", f"ground_truth:={ns}/gt", "-p", f"out_dir:={out}"]
    for param in params:
        cmd += ["-p", param]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


@contextlib.contextmanager
def eval_feeder(ns: str, proc: subprocess.Popen):
    """(depth publisher, ground-truth publisher) on ``ns`` once the eval node ``proc`` subscribes to
    both; afterwards the feeder is closed and ``proc`` killed if it still runs."""
    context = Context()
    rclpy.init(args=[], context=context)
    node = rclpy.create_node(f"feeder_{ns[2:]}", context=context)
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pub_depth = node.create_publisher(Image, f"{ns}/depth", qos)
        pub_gt = node.create_publisher(Image, f"{ns}/gt", qos)
        assert wait_until(lambda: pub_gt.get_subscription_count() == 1 and pub_depth.get_subscription_count() == 1,
                          30.0), "the eval node did not come up"
        yield pub_depth, pub_gt
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        rclpy.shutdown(context=context)
