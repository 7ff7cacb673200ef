"""Intra-process delivery between the nodes of one process, as rclcpp's intra-process comms do for
composed C++ nodes.

rclpy has no intra-process path: a message from one node of a process to another goes through DDS
like one to another machine. For a 1.4 MB camera image that hop costs 6-7 ms on a 2-core CPU
(docs/benchmarks.md, section 11), more than the depth node's own work. When the nodes of a
``depth-attn run`` graph share a process (``ros2 launch`` starts each in its own), the graph enables
this bus on its context and the nodes' hot topics go through it:

- a publisher made with ``create_publisher`` hands the message object (a serialised message from the
  bag player is deserialised once) straight to the callbacks of the subscriptions of the same context
  on the same resolved topic and type, before anything else;
- it publishes through DDS as well only when DDS has subscriptions outside this process (RViz, a
  recorder, a node in another process); those in-process subscriptions then drop the DDS copy
  (matched by topic, stamp and frame_id), so nothing arrives twice;
- subscriptions keep their DDS reader, so publishers outside the process reach them as before.

Callbacks run on the publisher's thread: the callbacks of our nodes only hand work to their node's
own thread (a queue or a latest-only slot), which is safe from any thread. A publisher that reuses
its message's buffers after ``publish`` returns (the depth node's builders) says so with
``reuses_buffers`` and its in-process subscribers get a copy.

Without an enabled bus (``ros2 launch``, tests that build nodes by hand) both functions are plain
``node.create_publisher`` / ``node.create_subscription``.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

_BUSES: weakref.WeakKeyDictionary[Any, IntraProcessBus] = weakref.WeakKeyDictionary()
_BUSES_LOCK = threading.Lock()
RECENT_KEYS = 64  # per topic: in-process deliveries remembered to drop their DDS copies


def enable(context) -> IntraProcessBus:
    """The bus of ``context`` (made on the first call): nodes made on that context afterwards use it."""
    with _BUSES_LOCK:
        bus = _BUSES.get(context)
        if bus is None:
            bus = _BUSES[context] = IntraProcessBus()
        return bus


def bus_for(context) -> Optional[IntraProcessBus]:
    with _BUSES_LOCK:
        return _BUSES.get(context)


def message_key(msg) -> Optional[Tuple[int, int, str]]:
    """(sec, nanosec, frame_id) of a message with a header; None for one without."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return None
    return int(stamp.sec), int(stamp.nanosec), str(header.frame_id)


@dataclass
class _Subscriber:
    topic: str
    msg_type: type
    callback: Callable[[Any], None]
    node_name: str


@dataclass
class BusCounts:
    delivered: int = 0  # messages handed to in-process callbacks
    also_dds: int = 0  # publishes that also went through DDS (someone outside the process listens)
    duplicates_dropped: int = 0  # DDS copies of in-process deliveries, dropped
    per_topic: Dict[str, int] = field(default_factory=dict)


class IntraProcessBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: Dict[str, List[_Subscriber]] = {}
        self._recent: Dict[str, Tuple[Deque[Tuple[int, int, str]], Set[Tuple[int, int, str]]]] = {}
        self.counts = BusCounts()

    def add(self, subscriber: _Subscriber) -> None:
        with self._lock:
            self._subscribers.setdefault(subscriber.topic, []).append(subscriber)

    def remove_node(self, node_name: str) -> None:
        """Forget the subscriptions of a node (before it is destroyed)."""
        with self._lock:
            for topic, subs in list(self._subscribers.items()):
                kept = [s for s in subs if s.node_name != node_name]
                if kept:
                    self._subscribers[topic] = kept
                else:
                    del self._subscribers[topic]

    def remove(self, topic: str, node_name: str) -> None:
        """Forget one subscription of a node (before it is destroyed)."""
        with self._lock:
            kept = [s for s in self._subscribers.get(topic, ()) if s.node_name != node_name]
            if kept:
                self._subscribers[topic] = kept
            else:
                self._subscribers.pop(topic, None)

    def subscribers(self, topic: str, msg_type: type) -> List[_Subscriber]:
        with self._lock:
            return [s for s in self._subscribers.get(topic, ()) if s.msg_type is msg_type]

    def deliver(self, topic: str, msg, subscribers: List[_Subscriber]) -> None:
        key = message_key(msg)
        with self._lock:
            if key is not None:
                order, members = self._recent.setdefault(topic, (deque(), set()))
                if key not in members:
                    order.append(key)
                    members.add(key)
                    if len(order) > RECENT_KEYS:
                        members.discard(order.popleft())
            self.counts.delivered += len(subscribers)
            self.counts.per_topic[topic] = self.counts.per_topic.get(topic, 0) + 1
        for subscriber in subscribers:
            subscriber.callback(msg)

    def delivered_already(self, topic: str, msg) -> bool:
        """Whether ``msg`` (arrived through DDS) was handed over in-process: its DDS copy is dropped."""
        key = message_key(msg)
        if key is None:
            return False
        with self._lock:
            recent = self._recent.get(topic)
            if recent is not None and key in recent[1]:
                self.counts.duplicates_dropped += 1
                return True
        return False


class IntraProcessPublisher:
    """An rclpy publisher that serves this process's subscriptions first (see the module docstring);
    everything else (``topic_name``, ``destroy``, ...) is the rclpy publisher's."""

    def __init__(self, publisher, msg_type: type, bus: IntraProcessBus, reuses_buffers: bool) -> None:
        self._publisher = publisher
        self._msg_type = msg_type
        self._bus = bus
        self._reuses_buffers = reuses_buffers

    def __getattr__(self, name: str):
        return getattr(self._publisher, name)

    @property
    def dds_publisher(self):
        return self._publisher

    def get_subscription_count(self) -> int:
        return max(self._publisher.get_subscription_count(), len(self._subscribers()))

    def _subscribers(self) -> List[_Subscriber]:
        return self._bus.subscribers(self._publisher.topic_name, self._msg_type)

    def _deserialised(self, rawdata) -> Optional[Any]:
        """The message in ``rawdata``, or None for one without a stamp to drop a DDS copy by."""
        from rclpy.serialization import deserialize_message

        msg = deserialize_message(bytes(rawdata), self._msg_type)
        return msg if message_key(msg) is not None else None

    def prepare(self, rawdata: bytes):
        """The message a serialised ``rawdata`` holds, deserialised ahead of ``publish_prepared``, where
        this process has subscribers for it (else None: publish the bytes)."""
        return self._deserialised(rawdata) if self._subscribers() else None

    def publish_prepared(self, msg, for_dds: Callable[[], Any]) -> None:
        """Deliver ``msg`` (a message with a header, e.g. from ``prepare``) in-process, and ``for_dds()``
        (the same message, or its serialised bytes, made only when needed) through DDS where someone
        outside the process listens."""
        self._send(msg, self._subscribers(), for_dds)

    def publish(self, msg) -> None:
        """Like rclpy's: ``msg`` is a message or its serialised bytes."""
        subscribers = self._subscribers()
        delivered = None
        if subscribers:
            if isinstance(msg, (bytes, bytearray, memoryview)):
                delivered = self._deserialised(msg)
            elif message_key(msg) is not None:
                delivered = copy.deepcopy(msg) if self._reuses_buffers else msg
        if delivered is None:  # nobody here, or no stamp to drop a DDS copy by: DDS only
            self._publisher.publish(msg)
        else:
            self._send(delivered, subscribers, lambda: msg)

    def _send(self, msg, subscribers: List[_Subscriber], for_dds: Callable[[], Any]) -> None:
        topic = self._publisher.topic_name
        if subscribers:
            self._bus.deliver(topic, msg, subscribers)
            if self._publisher.get_subscription_count() <= len(subscribers):
                return
            self._bus.counts.also_dds += 1
        self._publisher.publish(for_dds())


def create_publisher(node, msg_type: type, topic: str, qos, *, reuses_buffers: bool = False, **kwargs):
    """``node.create_publisher``, served in-process where the node's context has a bus."""
    publisher = node.create_publisher(msg_type, topic, qos, **kwargs)
    bus = bus_for(node.context)
    if bus is None:
        return publisher
    return IntraProcessPublisher(publisher, msg_type, bus, reuses_buffers)


def create_subscription(node, msg_type: type, topic: str, callback: Callable[[Any], None], qos, **kwargs):
    """``node.create_subscription``; where the node's context has a bus, the callback also takes
    in-process deliveries, and their DDS copies are dropped."""
    bus = bus_for(node.context)
    if bus is None:
        return node.create_subscription(msg_type, topic, callback, qos, **kwargs)
    resolved: List[str] = []

    def from_dds(msg) -> None:
        if resolved and bus.delivered_already(resolved[0], msg):
            return
        callback(msg)

    subscription = node.create_subscription(msg_type, topic, from_dds, qos, **kwargs)
    resolved.append(subscription.topic_name)
    bus.add(_Subscriber(subscription.topic_name, msg_type, callback, node.get_name()))
    return subscription


def destroy_subscription(node, subscription) -> None:
    """``node.destroy_subscription``, and the subscription taken off its context's bus (no more
    in-process deliveries)."""
    bus = bus_for(node.context)
    if bus is not None:
        bus.remove(subscription.topic_name, node.get_name())
    node.destroy_subscription(subscription)
