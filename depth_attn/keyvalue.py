"""The one ``key=value`` reader: CLI ``--set`` and ``--option``, the depth node's ``backend_options``
and the graph runner's ``--set`` all split an assignment here, and read a value as a YAML scalar here."""

from __future__ import annotations

from typing import Dict, Tuple

import yaml


def split_assignment(text: str, what: str = "KEY=VALUE") -> Tuple[str, str]:
    """'key = value' -> ('key', 'value') (both stripped; the value may hold more '='); a ValueError
    saying ``what`` was expected when there is no '=' or no key."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected {what}, got {text!r}")
    return key.strip(), value.strip()


def scalar(text: str) -> object:
    """A value as YAML reads a scalar (2 -> int, 2.5 -> float, true -> bool); anything that is not one
    (a list, a mapping, nothing, bad YAML) stays the text."""
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(parsed, (list, dict)) or parsed is None else parsed


def parse_assignments(text: str, separator: str = ";", what: str = "key=value") -> Dict[str, object]:
    """'a=2; b=cuda,cpu' -> {'a': 2, 'b': 'cuda,cpu'} (values read by ``scalar``)."""
    out: Dict[str, object] = {}
    for item in (part.strip() for part in text.split(separator)):
        if item:
            key, value = split_assignment(item, what)
            out[key] = scalar(value)
    return out
