"""Several nodes in one process over one rclpy SingleThreadedExecutor: what `depth-attn run` does on
machines without `ros2 launch` (PyPI rclpy), and what tests use.

Protocol (read this if you write a node for the graph)
======================================================

Config file
    The SAME YAML that `ros2 launch` passes as a params file (``<node_name>: ros__parameters:``).
    The runner's own settings live in one more section of that form, which rcl parses like any
    other and no node reads::

        depth_attn_run:
          ros__parameters:
            nodes: [player, depth_node, eval_node]        # started in this order
            remappings: ["depth_node:image:=/kitti/image", "eval_node:depth/image_rect:=/depth/image_rect"]
        depth_node:
          ros__parameters: {backend: onnxruntime, ...}

    ``intra_process`` (bool, default true): the nodes of the graph hand their messages to each other
    in-process (``depth_attn.ros.intra_process``; DDS still carries them to listeners outside the
    process); ``false`` or ``depth-attn run --no-intra-process`` sends everything through DDS.

    ``remappings`` are ordinary rcl remapping rules; a ``NODE:`` prefix limits a rule to that node
    (rcl's own syntax), a rule without one applies to every node of the graph. rcl applies the first
    rule that matches, so ``--remap`` rules (given first) override the file's.

Node table
    ``NODE_TYPES`` maps a node name to ``"module:Class"``, imported lazily. The node name is also
    the name of its parameter section: ``depth_node`` -> ``depth_attn.ros.depth_node:DepthNode``,
    ``eval_node`` -> ``depth_attn.ros.eval_node:EvalNode``, ``player`` ->
    ``depth_attn.ros.player:BagPlayer``.

Construction
    ``Cls(node_name=NAME, context=CTX, cli_args=ARGS)``, where ``ARGS`` is
    ``["--ros-args", "--params-file", CONFIG, "-r", RULE, ..., "-p", "NAME:PARAM:=VALUE", ...]``,
    so parameters and remappings reach the node through rcl exactly as under `ros2 launch`. The
    class passes these keyword arguments on to ``rclpy.node.Node.__init__``. A constructor that
    cannot start (a backend that does not load, a missing bag) raises an exception whose message
    says what to do; the runner prints it, closes the nodes already built and exits with status 1.

Finishing
    A node whose job ends (a player at the end of its bag, an evaluator that has written its
    report) has an attribute ``finished`` (a ``threading.Event``) and sets it. The graph is done
    when every node that HAS a ``finished`` attribute has set it; a graph with none (a depth node
    serving a camera) runs until Ctrl-C, SIGTERM or ``--duration``. A node may set ``exit_code``
    (int, default 0); the runner exits with the largest.

Closing
    The runner then calls, for each node in reverse start order, ``close()`` when the node has one
    (stop worker threads, flush files) and ``destroy_node()``, then shuts the executor and the
    context down.

`--set KEY=VALUE` (CLI) overrides a parameter: ``NODE.PARAM=VALUE`` for one node, ``PARAM=VALUE``
for every node that declares it. VALUE is read as YAML by rcl (``80.0`` is a double, ``80`` an
integer, ``true`` a bool).
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from depth_attn import keyvalue
from depth_attn.ros import intra_process

RUNNER_SECTION = "depth_attn_run"

NODE_TYPES: Dict[str, str] = {
    "depth_node": "depth_attn.ros.depth_node:DepthNode",
    "eval_node": "depth_attn.ros.eval_node:EvalNode",
    "player": "depth_attn.ros.player:BagPlayer",
}


class GraphError(RuntimeError):
    """A graph that cannot start; the message says what to do."""


@dataclass
class GraphSpec:
    config: Optional[Path]
    nodes: List[str]
    remappings: List[str] = field(default_factory=list)
    parameters: List[str] = field(default_factory=list)  # rcl "-p" arguments: "[NODE:]PARAM:=VALUE"
    intra_process: bool = True  # the nodes hand messages to each other in-process (intra_process.py)
    init_args: List[str] = field(default_factory=list)  # the context's own (a node executable's sys.argv)

    def cli_args(self) -> List[str]:
        args = ["--ros-args"]
        if self.config is not None:
            args += ["--params-file", str(self.config)]
        for rule in self.remappings:
            args += ["-r", rule]
        for param in self.parameters:
            args += ["-p", param]
        return args


def load_class(name: str):
    """The node class registered under ``name`` in ``NODE_TYPES``."""
    if name not in NODE_TYPES:
        raise GraphError(f"unknown node {name!r}; the graph can run: {', '.join(NODE_TYPES)}")
    module_name, _, class_name = NODE_TYPES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise GraphError(f"node {name!r} is not available here ({exc})") from exc
    return getattr(module, class_name)


def read_runner_section(config: Optional[Path]) -> Dict[str, object]:
    """``nodes``, ``remappings`` and ``intra_process`` from the config's ``depth_attn_run`` section (parsed as a ROS
    params file, so a file rcl would reject is rejected here too)."""
    if config is None:
        return {}
    from depth_attn.ros.compat import parameters_from_yaml_file

    config = Path(config)
    if not config.is_file():
        raise GraphError(f"config file not found: {config}")
    try:
        params = parameters_from_yaml_file(config, [RUNNER_SECTION])  # rclpy's, or Humble's fallback
    except Exception as exc:  # RuntimeError / yaml errors: the file is not a valid params file
        raise GraphError(f"{config} is not a valid ROS 2 params file: {exc}") from exc
    out: Dict[str, object] = {}
    for key in ("nodes", "remappings"):
        if key in params:
            out[key] = list(params[key].value.string_array_value)
    if "intra_process" in params:
        out["intra_process"] = bool(params["intra_process"].value.bool_value)
    return out


def parse_set(items: Sequence[str], nodes: Sequence[str]) -> List[str]:
    """``["depth_node.backend=onnxruntime", "max_depth=60.0"]`` -> rcl ``-p`` arguments."""
    params = []
    for item in items:
        try:
            key, value = keyvalue.split_assignment(item, "KEY=VALUE or NODE.PARAM=VALUE")
        except ValueError as exc:
            raise GraphError(f"--set {exc}") from None
        node, dot, param = key.partition(".")
        if dot and node in nodes:
            params.append(f"{node}:{param}:={value}")
        elif dot and node in NODE_TYPES:
            raise GraphError(f"--set {item!r}: node {node!r} is not in this graph ({', '.join(nodes)})")
        else:
            params.append(f"{key}:={value}")
    return params


def make_spec(config: Optional[Path], sets: Sequence[str] = (), nodes: Optional[Sequence[str]] = None,
              remappings: Sequence[str] = (), intra_process: Optional[bool] = None) -> GraphSpec:
    """``intra_process`` None: the config's ``depth_attn_run.intra_process`` (default true)."""
    section = read_runner_section(config)
    node_names = list(nodes or section.get("nodes") or [])
    if not node_names:
        raise GraphError(f"no nodes to run: give --node NAME or list them under {RUNNER_SECTION}: "
                         f"ros__parameters: nodes: [...] in the config")
    for name in node_names:
        if name not in NODE_TYPES:
            raise GraphError(f"unknown node {name!r}; the graph can run: {', '.join(NODE_TYPES)}")
    return GraphSpec(
        config=Path(config) if config is not None else None,
        nodes=node_names,
        remappings=list(remappings) + list(section.get("remappings", [])),  # rcl: the first matching rule wins
        parameters=parse_set(sets, node_names),
        intra_process=bool(section.get("intra_process", True)) if intra_process is None else intra_process,
    )


class Graph:
    """The nodes of a ``GraphSpec`` on one SingleThreadedExecutor in a private context.

    Single-threaded on purpose: every callback of our nodes only hands work to the node's own
    thread, and rclpy's MultiThreadedExecutor doubled the end-to-end latency of the evaluation graph
    on 2 cores (its thread pool fights the frame workers for the GIL; docs/benchmarks.md).

    ``with Graph(spec) as g: g.spin()`` runs to the end (see the module docstring); tests use
    ``g.start()`` (spins in a thread) and ``g.nodes[...]``.
    """

    def __init__(self, spec: GraphSpec) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.spec = spec
        self.context = Context()
        rclpy.init(args=list(spec.init_args), context=self.context)
        self.bus = intra_process.enable(self.context) if spec.intra_process else None
        self.nodes: Dict[str, object] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        try:
            for name in spec.nodes:
                cls = load_class(name)
                self.nodes[name] = cls(node_name=name, context=self.context, cli_args=spec.cli_args())
        except BaseException:
            self.close()
            raise
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in self.nodes.values():
            self.executor.add_node(node)

    def finished(self) -> bool:
        events = [n.finished for n in self.nodes.values() if isinstance(getattr(n, "finished", None), threading.Event)]
        return bool(events) and all(e.is_set() for e in events)

    def exit_code(self) -> int:
        return max([int(getattr(n, "exit_code", 0) or 0) for n in self.nodes.values()] + [0])

    def stop(self) -> None:
        self._stop.set()

    def spin(self, duration: Optional[float] = None) -> int:
        """Spin until the graph finishes, ``stop()``, ``duration`` seconds or the context shuts down."""
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while self.context.ok() and not self._stop.is_set() and not self.finished():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.executor.spin_once(timeout_sec=0.1)
        except Exception as exc:
            if type(exc).__name__ != "ExternalShutdownException":  # Ctrl-C shut the context down
                raise
        return self.exit_code()

    def start(self) -> Graph:
        self._thread = threading.Thread(target=self.spin, name="graph-spin", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        import rclpy

        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10.0)
        executor = getattr(self, "executor", None)
        for node in reversed(list(self.nodes.values())):
            close = getattr(node, "close", None)
            if callable(close):
                close()
            if executor is not None:
                executor.remove_node(node)
            if self.bus is not None:
                self.bus.remove_node(node.get_name())
            node.destroy_node()
        self.nodes.clear()
        if executor is not None:
            executor.shutdown()
        if self.context.ok():
            rclpy.shutdown(context=self.context)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_graph(spec: GraphSpec, duration: Optional[float] = None, fatal_label: Optional[str] = None) -> int:
    """The one node runner: build, spin and close a graph (one node for a node executable); SIGINT or
    SIGTERM, once or more, stops it and every node closes (the eval node's rows and summary written).
    Returns the exit status. ``fatal_label``: a graph that cannot start prints one line
    ``[LABEL] FATAL: why`` (no traceback) and returns 1 (0 when a stop signal came while it started)."""
    import sys

    from depth_attn.ros.stop_signals import StopSignals

    stop = StopSignals().install()  # repeats are ignored: a second Ctrl-C never interrupts close()
    try:
        try:
            graph = Graph(spec)
        except Exception as exc:
            if fatal_label is None:
                raise
            if stop.received is None:  # (stopped while starting: nothing to report)
                print(f"[{fatal_label}] FATAL: {exc}", file=sys.stderr)
            return 0 if stop.received is not None else 1
        stop.on_stop = graph.stop
        if stop.received is not None:  # stopped while the nodes were starting
            graph.stop()
        try:
            return graph.spin(duration)
        finally:
            graph.close()
    finally:
        if fatal_label is None:
            stop.restore()
        else:  # a node's process is about to exit: a late repeat must not kill it after a clean close
            stop.ignore_from_now()
