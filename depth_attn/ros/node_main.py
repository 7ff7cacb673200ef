"""The ``main`` of every node executable (depth_node, eval_node, player): one node in its own process,
run by the one node runner (``depth_attn.ros.graph.run_graph``, which `depth-attn run` uses for a whole
graph): signals first (before ``rclpy.init``), the node in a context made from the process's
arguments, spun until it finishes (a node with a ``finished`` event: the eval node, the player) or
until Ctrl-C/SIGTERM, then closed cleanly; the process exits with the node's ``exit_code`` (0 where
it has none). A node that cannot start prints one FATAL line (no traceback) and exits 1."""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def run_node(label: str, args: Optional[Sequence[str]] = None) -> int:
    """The node registered as ``label`` in ``graph.NODE_TYPES`` alone, with ``args`` (default
    ``sys.argv``: its ``--ros-args``) as the context's arguments. The class is looked up by its label,
    never passed in: under ``python -m depth_attn.ros.depth_node`` the module runs as ``__main__`` and
    its class object is not the registered one."""
    from depth_attn.ros.graph import GraphSpec, run_graph

    spec = GraphSpec(config=None, nodes=[label], intra_process=False,
                     init_args=list(sys.argv if args is None else args))
    return run_graph(spec, fatal_label=label)
