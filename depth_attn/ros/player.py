"""BagPlayer: publishes a rosbag2's messages in real time with rclpy (for machines without
``ros2 bag play``), read with rosbags.

Parameters: ``bag`` (folder or .mcap/.db3), ``rate`` (speed factor, 1.0 = as recorded),
``frame_rate`` (Hz; > 0 replaces the bag's timing: one frame, i.e. all messages of one stamp, per
period), ``loop`` (forever) / ``repeat`` (times), ``restamp`` (every header stamp becomes the send
time, the same for all messages of one frame, so latency can be measured end to end), ``topics``
(only these; empty = all), ``wait_for_subscribers`` / ``wait_timeout`` (hold the first message
until every image topic has a subscriber), ``start_delay``, ``clock`` (Hz; > 0 publishes the playback
time on /clock at that rate, as ``ros2 bag play --clock`` does, for nodes with ``use_sim_time``: each
frame's stamp as it goes out, advancing between frames as the stamps do).

Messages go out on the bag's topic names (remap them as usual). /tf_static is published once with
transient-local QoS. A damaged bag: every message before the damage is published, then the error,
naming the file, is logged and the player finishes with exit code 1.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from depth_attn.data import bags
from depth_attn.ros import convert, intra_process, param_schema
from depth_attn.ros.param_schema import Param
from depth_attn.ros.sim_clock import CLOCK_TOPIC, steady_timer

# read at start (read-only): playback is set up from them once
PARAMETERS: Dict[str, Param] = param_schema.fixed_at_start({
    "bag": Param("", "the bag to play: a rosbag2 folder or its .mcap / .db3 file"),
    "rate": Param(1.0, "playback speed factor (1.0 = as recorded)"),
    "frame_rate": Param(0.0, "frames per second, replacing the bag's timing (0 = the bag's timing x rate)"),
    "loop": Param(False, "play the bag again and again until shut down"),
    "repeat": Param(1, "play the bag this many times (with loop false)"),
    "restamp": Param(False, "set header stamps to the send time (one stamp per frame) for end-to-end latency"),
    "topics": Param([""], "topics to play (empty = all)"),
    "wait_for_subscribers": Param(True, "hold the first message until every image topic has a subscriber"),
    "wait_timeout": Param(10.0, "seconds to wait for subscribers before playing anyway"),
    "start_delay": Param(0.5, "seconds to wait before the first message (after subscribers are there)"),
    "reliability": Param("reliable", "QoS reliability of the published topics", choices=("reliable", "best_effort")),
    "clock": Param(0.0, "publish the playback time on /clock at this rate, Hz, for use_sim_time nodes (0 = off)"),
})


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    package, _, name = msgtype.rpartition("/")
    module = importlib.import_module(package.replace("/", "."))
    return getattr(module, name)


class BagPlayer(Node):
    """See the module docstring. ``finished`` is set when playback ends; ``frames_sent`` counts frames
    (distinct stamps) published; ``error`` holds the message of a damaged bag."""

    def __init__(self, node_name: str = "player", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = param_schema.declare(self, PARAMETERS)
        p["topics"] = [t for t in (p["topics"] or []) if t]  # [""] is the typed empty list
        if not p["bag"]:
            raise ValueError("parameter 'bag' is empty: give the bag to play (-p bag:=PATH)")
        self.bag = Path(p["bag"]).expanduser()
        if not self.bag.exists():
            raise FileNotFoundError(f"bag not found: {self.bag} (make one with `depth-attn kitti2bag DRIVE --out BAG`; "
                                    "`make demo` builds out/demo/kitti_bag from the shared frames)")
        if p["rate"] <= 0 and p["frame_rate"] <= 0:
            raise ValueError("parameter 'rate' must be > 0 (or set frame_rate)")
        if p["clock"] < 0:
            raise ValueError(f"parameter 'clock' is {p['clock']:g} Hz; give a rate > 0, or 0 for no /clock")
        self.params = p
        self.topics = bags.bag_topics(self.bag)
        if p["topics"]:
            missing = [t for t in p["topics"] if t not in self.topics]
            if missing:
                raise ValueError(f"the bag has no topic {', '.join(missing)}; it has {', '.join(sorted(self.topics))}")
            self.topics = {t: self.topics[t] for t in p["topics"]}
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if p["reliability"] == "reliable"
                         else ReliabilityPolicy.BEST_EFFORT)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.publishers_by_topic: Dict[str, object] = {}
        self.classes: Dict[str, type] = {}
        self.restampable: Dict[str, bool] = {}
        for topic, msgtype in list(self.topics.items()):
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError):
                # e.g. tf2_msgs is not among the PyPI ROS wheels: play the rest
                self.get_logger().warning(f"not playing {topic}: message type {msgtype} is not installed here")
                del self.topics[topic]
                continue
            self.classes[topic] = cls
            self.restampable[topic] = bags.starts_with_header(msgtype)
            self.publishers_by_topic[topic] = intra_process.create_publisher(
                self, cls, topic, latched if topic == bags.TF_STATIC_TOPIC else qos)
        self.finished = threading.Event()
        self.exit_code = 0
        self.error: Optional[str] = None
        self.frames_sent = 0
        self.messages_sent = 0
        self._schedule_start: Optional[float] = None  # frame_rate mode: when frame 0 was due
        self._next_pass_due: Optional[float] = None  # bag-timing mode: when the next pass starts
        self._mean_interval = 0.0
        self._pass_frames = 0
        self._stop = threading.Event()
        self._clock_origin: Optional[tuple] = None  # (playback time ns, time.monotonic()) of the last frame sent
        self.pub_clock = None
        if p["clock"] > 0:
            from rosgraph_msgs.msg import Clock

            self._clock_class = Clock
            self.pub_clock = self.create_publisher(Clock, CLOCK_TOPIC, QoSProfile(
                depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))  # as rclcpp's ClockQoS
            steady_timer(self, 1.0 / p["clock"], self._publish_clock)
        self._thread = threading.Thread(target=self._play, name=f"{node_name}-playback", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ playback thread

    def _image_topics(self):
        return [t for t, ty in self.topics.items() if ty in (bags.IMAGE_TYPE, bags.COMPRESSED_TYPE)]

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + float(self.params["wait_timeout"])
        topics = self._image_topics()
        while not self._stop.is_set():
            waiting = [t for t in topics if self.publishers_by_topic[t].get_subscription_count() == 0]
            if not waiting:
                return
            if time.monotonic() > deadline:
                self.get_logger().warning(f"no subscriber on {', '.join(waiting)} after "
                                          f"{self.params['wait_timeout']:g} s; playing anyway")
                return
            time.sleep(0.05)

    def _play(self) -> None:
        p = self.params
        try:
            if p["wait_for_subscribers"]:
                self._wait_for_subscribers()
            self._stop.wait(float(p["start_delay"]))
            passes = 0
            while not self._stop.is_set():
                self._play_once(first_pass=passes == 0)
                passes += 1
                if not p["loop"] and passes >= max(int(p["repeat"]), 1):
                    break
            self._wait_acknowledged(5.0)
            self._say(f"played {self.frames_sent} frames ({self.messages_sent} messages) from {self.bag}")
        except bags.BagError as exc:
            self.error = str(exc)
            self.exit_code = 1
            self.get_logger().error(f"{exc} (after {self.frames_sent} frames)")
        except Exception as exc:  # noqa: BLE001  never die silently in a thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.exit_code = 1
            self.get_logger().error(f"playback failed: {self.error}")
        finally:
            self.finished.set()

    def _playback_time_ns(self) -> Optional[int]:
        """The /clock time: the last frame's stamp, advancing from it as the stamps do (restamped: the wall
        clock; the bag's timing: x rate). With ``frame_rate`` the bag's stamps no longer follow the
        playback, so the clock holds each frame's stamp until the next (it never runs ahead of a frame)."""
        if self._clock_origin is None:
            return None
        stamp, at = self._clock_origin
        p = self.params
        speed = 1.0 if p["restamp"] else 0.0 if p["frame_rate"] > 0 else float(p["rate"])
        return stamp + int((time.monotonic() - at) * 1e9 * speed)

    def _publish_clock(self, stamp_ns: Optional[int] = None) -> None:
        stamp_ns = self._playback_time_ns() if stamp_ns is None else stamp_ns
        if stamp_ns is not None and self.pub_clock is not None and self.context.ok():
            self.pub_clock.publish(self._clock_class(clock=convert.ns_to_stamp(stamp_ns)))

    def _say(self, message: str) -> None:
        """Log from the playback thread; after Ctrl-C (the context already shut down, rosout gone) print."""
        if self.context.ok():
            self.get_logger().info(message)
        else:
            print(f"[{self.get_name()}] {message}", flush=True)

    def _wait_acknowledged(self, timeout_s: float) -> None:
        """Before finishing, let the reliable subscribers take the last frames: a process that exits
        right after publish() takes its unacknowledged messages (a frame is ~1 MB) with it."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        for publisher in self.publishers_by_topic.values():
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return
            try:
                publisher.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))
            except Exception:  # noqa: BLE001 - an rmw without it: nothing to wait for
                return

    def _play_once(self, first_pass: bool) -> None:
        """One pass over the bag. Frames keep one schedule across passes: ``frame_rate`` frames per
        second, or the bag's timing / ``rate`` with the next pass one mean frame interval after the last.
        A frame is the messages that share a log time: made ready before the frame is due (for the
        subscribers in this process, deserialised, as a camera driver has its image ready when it stamps
        it), then stamped and sent together, camera info before its image."""
        p = self.params
        rate, frame_period = float(p["rate"]), (1.0 / p["frame_rate"] if p["frame_rate"] > 0 else None)
        pass_start: Optional[float] = None
        start_log: Optional[int] = None
        last_log: Optional[int] = None
        for group in _frames(bags.iter_messages(self.bag, list(self.topics)), self.restampable.get):
            if self._stop.is_set():
                return
            frame = []
            for message in group:
                if message.topic == bags.TF_STATIC_TOPIC:
                    if first_pass:
                        self.publishers_by_topic[message.topic].publish(message.rawdata)
                    continue
                frame.append(message)
            if not frame:
                continue
            frame.sort(key=lambda m: self.topics[m.topic] != bags.INFO_TYPE)  # stable: the rest in bag order
            ready = [(m, self.publishers_by_topic[m.topic], _prepare(self.publishers_by_topic[m.topic], m.rawdata))
                     for m in frame]
            log_time = frame[0].log_time_ns
            if frame_period is not None:
                if self._schedule_start is None:
                    self._schedule_start = time.monotonic()
                due = self._schedule_start + self.frames_sent * frame_period
            else:
                if pass_start is None:
                    pass_start, start_log = self._next_pass_due or time.monotonic(), log_time
                due = pass_start + (log_time - start_log) / 1e9 / rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if pass_start is not None and last_log is not None and self.frames_sent:
                self._mean_interval = (log_time - start_log) / 1e9 / rate / max(self._pass_frames, 1)
            last_log = log_time
            self.frames_sent += 1
            self._pass_frames += 1
            new_stamp = time.time_ns()  # right before the frame's first message goes out
            if self.pub_clock is not None:  # the clock reaches the frame's time before its messages go out
                self._clock_origin = (new_stamp if p["restamp"] else log_time, time.monotonic())
                self._publish_clock(self._clock_origin[0])
            for message, publisher, prepared in ready:
                restamp = p["restamp"] and self.restampable[message.topic]

                def serialised(raw=message.rawdata, restamp=restamp, stamp=new_stamp) -> bytes:
                    return bags.restamp_cdr(raw, stamp) if restamp else raw

                if prepared is None:
                    publisher.publish(serialised())
                else:
                    if restamp:
                        prepared.header.stamp = convert.ns_to_stamp(new_stamp)
                    publisher.publish_prepared(prepared, serialised)  # serialised only if DDS needs it
                self.messages_sent += 1
        if pass_start is not None:
            self._next_pass_due = time.monotonic() + self._mean_interval
        self._pass_frames = 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


def play(cli_args: List[str]) -> int:
    """Play a bag in a private context until done or Ctrl-C (what `depth-attn play` runs); ``cli_args``
    are ROS arguments (``--ros-args -p bag:=... -r from:=to``). Prints what was played."""
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from depth_attn.ros.stop_signals import StopSignals

    stop = StopSignals().install()  # a private context has no rclpy handler: the loop checks stop.received
    context = Context()
    rclpy.init(args=[], context=context)
    player = None
    executor = SingleThreadedExecutor(context=context)
    code = 0
    try:
        player = BagPlayer(context=context, cli_args=cli_args)
        executor.add_node(player)
        while context.ok() and not player.finished.is_set() and stop.received is None:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if player is not None:
            player.close()
            code = player.exit_code
            print(f"played {player.frames_sent} frames ({player.messages_sent} messages) from {player.bag}")
            if player.error:
                print(f"depth-attn play: error: {player.error}")
            player.destroy_node()
        executor.shutdown()
        if context.ok():
            rclpy.shutdown(context=context)
        stop.restore()
    return code

def _frames(messages, has_header=lambda topic: False):
    """Consecutive messages of one frame, as lists: one header stamp (a camera info recorded a few ms
    after its image, as drivers publish them, is still that image's: they go out together, restamped
    alike, so a depth node pairs them as it pairs a live camera's); a message without a header joins
    the frame of its log time."""
    group: List = []
    stamp = None  # the group's header stamp (None: only messages without a header so far)
    for message in messages:
        own = bags.stamp_of_cdr(message.rawdata) if has_header(message.topic) else None
        if own is None:
            same = bool(group) and message.log_time_ns == group[0].log_time_ns
        else:
            same = bool(group) and (own == stamp or (stamp is None and message.log_time_ns == group[0].log_time_ns))
        if group and not same:
            yield group
            group, stamp = [], None
        if own is not None and stamp is None:
            stamp = own
        group.append(message)
    if group:
        yield group


def _prepare(publisher, rawdata):
    """The deserialised message where ``publisher`` serves subscribers in this process, else None."""
    prepare = getattr(publisher, "prepare", None)
    return prepare(rawdata) if prepare is not None else None


def main(args=None) -> int:
    """`ros2 run depth_attn player --ros-args -p bag:=out/kitti_bag -p restamp:=true` (or `depth-attn play`)."""
    from depth_attn.ros.node_main import run_node

    return run_node("player", args)


if __name__ == "__main__":
    raise SystemExit(main())
