"""A node's parameters declared once (the schema every node of the package uses): each ``Param``
gives its default (which gives its type), description, range, choices and whether it is fixed at
start; from it come the descriptors rclpy declares (what `ros2 param describe` shows), the check of
a start value or a run-time set, and ``CHOICES`` for the launch and config tests."""

from __future__ import annotations

from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

FIXED_AT_START = "fixed at start: restart the node to change it"


class Param(NamedTuple):
    """One node parameter, declared once: its default (which gives its type), description, range,
    choices and whether it is fixed at start (read-only: what the node is and how it is wired) or
    applies while it runs when set at run time."""

    default: object
    description: str
    bounds: Optional[Tuple[float, float]] = None
    choices: Optional[Tuple[str, ...]] = None
    read_only: bool = False


Schema = Mapping[str, Param]

_WORDS = {bool: "a bool (true/false)", int: "an integer", float: "a number (e.g. 80.0 or 80)", str: "a string",
          list: "a list of strings", type(None): "no value", bytes: "a byte array"}


def fixed_at_start(schema: Schema) -> Dict[str, Param]:
    """``schema`` with every parameter read-only: for a node that reads its parameters once, at start."""
    return {name: p._replace(read_only=True) for name, p in schema.items()}


def choices_of(schema: Schema) -> Dict[str, Tuple[str, ...]]:
    return {name: p.choices for name, p in schema.items() if p.choices}


def _typed(p: Param, value: object) -> object:
    """An integer where a double is declared reads as that double (YAML's 80 for 80.0, the Integer that
    `ros2 param set node max_depth 20` sends)."""
    if isinstance(p.default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_value(schema: Schema, name: str, value: object) -> Optional[str]:
    """Why ``value`` is not valid for parameter ``name`` (type, range, choices), or None."""
    p = schema[name]
    kind = type(p.default)
    value = _typed(p, value)
    if type(value) is not kind:
        got = _WORDS.get(type(value), type(value).__name__)
        return f"parameter {name!r} must be {_WORDS[kind]}, got {got}: {value!r}"
    if p.bounds is not None and not (p.bounds[0] <= value <= p.bounds[1]):
        return f"parameter {name!r} must be in [{p.bounds[0]}, {p.bounds[1]}], got {value!r}"
    if p.choices is not None and value not in p.choices:
        return f"parameter {name!r} is {value!r}; choose one of {', '.join(p.choices)}"
    return None


def descriptor(p: Param, note: str = FIXED_AT_START, enforce_read_only: bool = True) -> ParameterDescriptor:
    """What rclpy declares for ``p``; ``note``: what the description says of a read-only one;
    ``enforce_read_only``: rclpy itself refuses to set it (false: the node checks, e.g. a lifecycle
    node that takes it while unconfigured)."""
    # dynamic typing: rclpy itself would refuse an integer for a double (`ros2 param set node max_depth 20`)
    # as "expected '3' got '2'"; check_value checks the type instead, and names it in words
    out = ParameterDescriptor(description=p.description + (f" ({note})" if p.read_only else ""),
                              read_only=p.read_only and enforce_read_only, dynamic_typing=True)
    if p.choices:
        out.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.bounds is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
        out.integer_range = [IntegerRange(from_value=int(p.bounds[0]), to_value=int(p.bounds[1]), step=1)]
    elif p.bounds is not None:
        out.floating_point_range = [FloatingPointRange(from_value=float(p.bounds[0]), to_value=float(p.bounds[1]),
                                                       step=0.0)]
    return out


def declare(node, schema: Schema, note: str = FIXED_AT_START, enforce_read_only: bool = True) -> Dict[str, object]:
    """Every parameter of ``schema`` declared on ``node`` with its descriptor (``descriptor``: by default
    rclpy refuses to set a read-only one at run time, "Trying to set a read-only parameter"); the values
    it started with, checked (a ValueError naming the parameter and what it must be)."""
    values = {}
    for name, p in schema.items():
        try:
            value = node.declare_parameter(name, p.default, descriptor(p, note, enforce_read_only)).value
        except Exception as exc:  # wrong type or out of range in YAML / --set
            raise ValueError(f"{check_value(schema, name, None)}: {exc}".replace(", got None", "")) from None
        values[name] = _typed(p, value)
        problem = check_value(schema, name, values[name])
        if problem:
            raise ValueError(problem)
    return values


def run_time_changes(schema: Schema, parameters, refuse_read_only: Callable[[str], bool] = lambda name: True,
                     note: str = FIXED_AT_START) -> Tuple[Dict[str, object], Optional[str]]:
    """A run-time set of rclpy ``Parameter`` s: the changes to ``schema``'s parameters (all valid), or
    why the set is refused (a read-only one where ``refuse_read_only(name)``, or an invalid one: then
    none applies). rclpy's own parameters (qos_overrides.*, use_sim_time) are left out."""
    changes: Dict[str, object] = {}
    for param in parameters:
        if param.name not in schema:
            continue
        if schema[param.name].read_only and refuse_read_only(param.name):
            return {}, f"{param.name} is {note}"
        value = _typed(schema[param.name], param.value)
        problem = check_value(schema, param.name, value)
        if problem:
            return {}, problem
        changes[param.name] = value
    return changes, None
