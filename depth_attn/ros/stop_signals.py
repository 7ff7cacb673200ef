"""Ctrl-C and SIGTERM for the nodes' mains and the graph runner: the first one stops, the ones after
it are ignored, so a node never dies half-closed with a traceback.

`ros2 launch` delivers SIGINT twice (the terminal's Ctrl-C to the whole process group, then launch's
own to each node), and again SIGTERM if a node is slow to go; systemd and `docker stop` send SIGTERM.
Python's default turns the first SIGINT into a KeyboardInterrupt wherever the main thread is, and the
second one into another inside ``destroy_node()``; SIGTERM kills outright, before the eval node's
summary is written.

Install it before ``rclpy.init``: rclpy's own handler (default context) then shuts the context down,
which ends ``executor.spin()``, and calls this one, which records the signal and calls ``on_stop``
(the graph runner's private context has no rclpy handler: there ``on_stop`` ends the spin loop).
Once closed, call ``ignore_from_now()`` just before the process exits.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable, Dict, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """``with StopSignals(on_stop) as stop: ...``; ``stop.received`` is the first signal (or None)."""

    def __init__(self, on_stop: Optional[Callable[[], None]] = None) -> None:
        self.on_stop = on_stop
        self.received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python's rule for signal handlers
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            return  # the second Ctrl-C, or launch's SIGINT after the terminal's: already stopping
        self.received = signum
        if self.on_stop is not None:
            self.on_stop()

    def ignore_from_now(self) -> None:
        """The process is about to exit: ignore these signals for good. (While the interpreter shuts
        down, Python puts its own handlers back to the default, which would let a late repeat kill a
        node that already closed cleanly, e.g. with exit code -2 under `ros2 launch`.)"""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
        self._previous.clear()

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()
