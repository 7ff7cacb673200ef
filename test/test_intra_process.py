"""In-process delivery between the nodes of one `depth-attn run` graph (depth_attn.ros.intra_process),
over real rclpy and DDS: each message arrives exactly once in-process, DDS carries it to a listener
in another context only while one exists, reused buffers are copied, serialised messages from the
bag player are delivered deserialised, and a plain rclpy context is untouched."""

from __future__ import annotations

import threading
import time
from typing import List

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from ros_harness import RosSession, unique, wait_until  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from depth_attn.ros import convert, intra_process  # noqa: E402


class Listener:
    def __init__(self) -> None:
        self.messages: List[Image] = []
        self.threads: List[str] = []
        self.lock = threading.Lock()

    def __call__(self, msg: Image) -> None:
        with self.lock:
            self.messages.append(msg)
            self.threads.append(threading.current_thread().name)

    def stamps(self) -> List[int]:
        with self.lock:
            return [convert.stamp_to_ns(m.header.stamp) for m in self.messages]


def image(stamp_ns: int, value: int) -> Image:
    return convert.rgb_to_image(np.full((4, 6, 3), value, np.uint8), "rgb8", convert.make_header("cam", stamp_ns))


@pytest.fixture
def sessions():
    graph, outside = RosSession(), RosSession()
    intra_process.enable(graph.context)
    yield graph, outside
    outside.close()
    graph.close()


def test_in_process_exactly_once_and_dds_only_for_listeners_outside(sessions):
    graph, outside = sessions
    topic = "/" + unique("image")
    bus = intra_process.bus_for(graph.context)
    assert bus is not None and intra_process.bus_for(outside.context) is None
    sender = graph.add(Node(unique("sender"), context=graph.context))
    receiver = graph.add(Node(unique("receiver"), context=graph.context))
    publisher = intra_process.create_publisher(sender, Image, topic, 10)
    inside = Listener()
    intra_process.create_subscription(receiver, Image, topic, inside, 10)
    assert wait_until(lambda: publisher.dds_publisher.get_subscription_count() == 1, 10.0)  # the receiver's reader

    # nobody outside the process: in-process only, on the publisher's thread, DDS not used
    for i in range(5):
        publisher.publish(image(1_000 + i, i))
    assert inside.stamps() == [1_000 + i for i in range(5)]
    assert set(inside.threads) == {threading.current_thread().name}
    assert bus.counts.also_dds == 0
    time.sleep(0.5)
    assert len(inside.stamps()) == 5  # no DDS copy came later either

    # a listener in another context (another process, as far as DDS knows): DDS carries it there, and
    # the in-process subscriber drops its DDS copies
    outside_node = outside.add(Node(unique("outside"), context=outside.context))
    far = Listener()
    outside_node.create_subscription(Image, topic, far, 10)
    assert wait_until(lambda: publisher.dds_publisher.get_subscription_count() == 2, 10.0)
    for i in range(5, 10):
        publisher.publish(image(1_000 + i, i))
    assert wait_until(lambda: len(far.stamps()) == 5, 10.0)
    assert far.stamps() == [1_000 + i for i in range(5, 10)]
    assert wait_until(lambda: bus.counts.duplicates_dropped == 5, 10.0)
    time.sleep(0.3)
    assert inside.stamps() == [1_000 + i for i in range(10)]  # each exactly once
    assert bus.counts.also_dds == 5
    assert [int(m.data[0]) for m in far.messages] == list(range(5, 10))

    # a publisher outside still reaches the in-process subscriber through DDS, once
    outside_pub = outside_node.create_publisher(Image, topic, 10)
    assert wait_until(lambda: outside_pub.get_subscription_count() >= 1, 10.0)
    outside_pub.publish(image(5_000, 50))
    assert wait_until(lambda: 5_000 in inside.stamps(), 10.0)
    time.sleep(0.3)
    assert inside.stamps().count(5_000) == 1


def test_reused_buffers_are_copied_and_serialised_messages_deserialised(sessions):
    graph, _ = sessions
    sender = graph.add(Node(unique("sender"), context=graph.context))
    receiver = graph.add(Node(unique("receiver"), context=graph.context))
    reused_topic, raw_topic = "/" + unique("depth"), "/" + unique("raw")
    reusing = intra_process.create_publisher(sender, Image, reused_topic, 10, reuses_buffers=True)
    raw = intra_process.create_publisher(sender, Image, raw_topic, 10)
    got_reused, got_raw = Listener(), Listener()
    intra_process.create_subscription(receiver, Image, reused_topic, got_reused, 10)
    intra_process.create_subscription(receiver, Image, raw_topic, got_raw, 10)

    builder = convert.DepthImageBuilder()
    view = builder.view(2, 3)
    view[:] = 4.5
    reusing.publish(builder.message(convert.make_header("cam", 7)))
    view[:] = 9.0  # the next frame overwrites the buffer: what was delivered must not change
    assert np.allclose(convert.image_to_depth(got_reused.messages[0]), 4.5)

    raw.publish(serialize_message(image(8, 33)))  # as the bag player publishes: CDR bytes
    delivered = got_raw.messages[0]
    assert isinstance(delivered, Image) and convert.stamp_to_ns(delivered.header.stamp) == 8
    assert convert.message_to_rgb(delivered).shape == (4, 6, 3) and int(delivered.data[0]) == 33
    # the player waits for subscribers: in-process ones count
    assert raw.get_subscription_count() >= 1

    intra_process.bus_for(graph.context).remove_node(receiver.get_name())
    assert intra_process.bus_for(graph.context).subscribers(raw_topic, Image) == []


def test_without_a_bus_the_plain_rclpy_objects():
    session = RosSession()
    try:
        node = session.add(Node(unique("plain"), context=session.context))
        publisher = intra_process.create_publisher(node, Image, "/" + unique("t"), 10)
        assert type(publisher).__name__ == "Publisher"
        subscription = intra_process.create_subscription(node, Image, "/" + unique("t"), lambda m: None, 10)
        assert type(subscription).__name__ == "Subscription"
    finally:
        session.close()
