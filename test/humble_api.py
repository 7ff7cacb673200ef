"""Audit of the package's rclpy / launch / launch_ros uses against the names those modules define in
ROS 2 Humble (test/data/humble_api.json, made by tools/humble_api_manifest.py from the humble sources).

Read with ``ast``, nothing run: ``from M import N`` and ``import M`` of those packages, attribute
chains on what they bind (``rclpy.shutdown``, ``QoSOverridingOptions.with_default_policies``), keyword
arguments of calls to their classes and functions, and, in classes deriving from one of their classes
(``class DepthNode(Node)``), every ``self.X`` the class does not define itself and ``super().__init__``'s
keywords. An import inside ``try: ... except ImportError`` is a feature probe: it may name something
Humble lacks (reported apart), as long as the code has a fallback.
"""

from __future__ import annotations

import ast
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

MANIFEST = Path(__file__).resolve().parent / "data" / "humble_api.json"
TRACKED = ("rclpy", "launch", "launch_ros")
# bases outside the three packages whose members a class of theirs inherits
EXTERNAL_MEMBERS = {
    "external:Exception": set(dir(Exception)), "external:RuntimeError": set(dir(RuntimeError)),
    "external:IntEnum": set(dir(enum.IntEnum)), "external:Enum": set(dir(enum.Enum)),
    "external:Generic": set(), "external:ABC": set(), "external:abc.ABC": set(),
}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "AttributeError"}


def tracked(module: Optional[str]) -> bool:
    return bool(module) and module.partition(".")[0] in TRACKED


class HumbleAPI:
    def __init__(self, path: Path = MANIFEST) -> None:
        data = json.loads(path.read_text())
        self.generated_from: dict = data["generated_from"]
        self.modules: Dict[str, dict] = data["modules"]

    def lookup(self, qual: str, depth: int = 0) -> Optional[Tuple[str, str]]:
        """``qual`` -> (kind: module | class | function | name, its defining qualified name), or None."""
        if qual in self.modules:
            return "module", qual
        module, _, name = qual.rpartition(".")
        entry = self.modules.get(module)
        if entry is None or depth > 20:
            return None
        if name in entry["classes"]:
            return "class", qual
        if name in entry["functions"]:
            return "function", qual
        if name in entry["aliases"]:
            target = entry["aliases"][name]
            return self.lookup(target, depth + 1) if tracked(target) else ("name", target)
        if name in entry["names"]:
            return "name", qual
        for star in entry["star_imports"]:
            found = self.lookup(f"{star}.{name}", depth + 1)
            if found is not None:
                return found
        return None

    def cls(self, qual: str) -> dict:
        module, _, name = qual.rpartition(".")
        return self.modules[module]["classes"][name]

    def bases(self, qual: str) -> List[str]:
        return self.cls(qual)["bases"]

    def members(self, qual: str) -> Optional[Set[str]]:
        """Every member of the class and its bases; None where a base is unknown (not checkable)."""
        out = set(self.cls(qual)["members"]) | set(dir(object))
        for base in self.bases(qual):
            if base in EXTERNAL_MEMBERS:
                out |= EXTERNAL_MEMBERS[base]
                continue
            found = self.lookup(base)
            if found is None or found[0] != "class":
                return None
            inherited = self.members(found[1])
            if inherited is None:
                return None
            out |= inherited
        return out

    def method(self, qual: str, name: str) -> Optional[Tuple[str, dict]]:
        """(the class that defines ``name``, its signature), searching the bases depth first."""
        methods = self.cls(qual)["methods"]
        if name in methods:
            return qual, methods[name]
        for base in self.bases(qual):
            found = self.lookup(base)
            if found is not None and found[0] == "class":
                hit = self.method(found[1], name)
                if hit is not None:
                    return hit
        return None

    def keywords(self, qual: str, name: str = "__init__") -> Optional[Set[str]]:
        """The keyword names the method accepts; None: any (``**kwargs`` that go nowhere we can see)."""
        hit = self.method(qual, name)
        if hit is None and name == "__init__":  # a class built by __new__ alone (Humble's rclpy.clock.Clock)
            hit = self.method(qual, "__new__")
        if hit is None:
            return set() if name == "__init__" and self.members(qual) is not None else None
        owner, sig = hit
        accepted = set(sig["params"])
        if not sig["varkw"]:
            return accepted
        if not sig.get("kwargs_to_base"):
            return None
        for base in self.bases(owner):
            found = self.lookup(base)
            more = self.keywords(found[1], name) if found is not None and found[0] == "class" else None
            if more is None:
                return None
            accepted |= more
        return accepted

    def function_keywords(self, qual: str) -> Optional[Set[str]]:
        module, _, name = qual.rpartition(".")
        sig = self.modules[module]["functions"][name]
        return None if sig["varkw"] else set(sig["params"])


@dataclass
class Findings:
    problems: List[str] = field(default_factory=list)
    probes: List[str] = field(default_factory=list)  # guarded imports Humble lacks (a fallback exists)
    checked: int = 0


def _guarded(tree: ast.AST) -> Set[int]:
    """ids of the import statements inside ``try`` blocks that catch ImportError (feature probes)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = set()
            for handler in node.handlers:
                types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                caught |= {ast.unparse(t).rpartition(".")[2] for t in types if t is not None}
            if caught & IMPORT_ERRORS:
                out |= {id(n) for stmt in node.body for n in ast.walk(stmt)
                        if isinstance(n, (ast.Import, ast.ImportFrom))}
    return out


def audit_source(source: str, where: str, api: HumbleAPI) -> Findings:
    tree = ast.parse(source)
    found = Findings()
    guarded = _guarded(tree)
    bindings: Dict[str, Tuple[str, str]] = {}  # local name -> (kind, qualified name)

    def problem(node: ast.AST, text: str) -> None:
        found.problems.append(f"{where}:{getattr(node, 'lineno', '?')}: {text}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if tracked(alias.name):
                    found.checked += 1
                    if api.lookup(alias.name) is None:
                        problem(node, f"import {alias.name}: no such module in Humble")
                    local = alias.asname or alias.name.partition(".")[0]
                    bindings[local] = ("module", alias.name if alias.asname else local)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and tracked(node.module):
            for alias in node.names:
                found.checked += 1
                hit = api.lookup(f"{node.module}.{alias.name}")
                if hit is None:
                    text = f"from {node.module} import {alias.name}: not in Humble"
                    (found.probes.append(f"{where}:{node.lineno}: {text}") if id(node) in guarded
                     else problem(node, text))
                    continue
                bindings[alias.asname or alias.name] = hit

    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def check_call(call: ast.AST, accepted: Optional[Set[str]], what: str) -> None:
        if not isinstance(call, ast.Call) or accepted is None:
            return
        for keyword in call.keywords:
            found.checked += 1
            if keyword.arg is not None and keyword.arg not in accepted:
                problem(call, f"{what}(..., {keyword.arg}=...): Humble's {what} has no such parameter")

    def callee_keywords(kind: str, qual: str) -> Optional[Set[str]]:
        return api.keywords(qual) if kind == "class" else api.function_keywords(qual) if kind == "function" else None

    for node in ast.walk(tree):  # attribute chains and calls on what the imports bound
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in bindings):
            continue
        kind, qual = bindings[node.id]
        expr: ast.AST = node
        while True:
            parent = parents.get(expr)
            if not (isinstance(parent, ast.Attribute) and parent.value is expr):
                break
            found.checked += 1
            if kind == "module":
                hit = api.lookup(f"{qual}.{parent.attr}")
                if hit is None:
                    problem(parent, f"{qual}.{parent.attr}: not in Humble")
                    break
                kind, qual = hit
            elif kind == "class":
                members = api.members(qual)
                if members is not None and parent.attr not in members:
                    problem(parent, f"{qual}.{parent.attr}: Humble's {qual.rpartition('.')[2]} has no such member")
                elif isinstance(parents.get(parent), ast.Call) and parents[parent].func is parent:
                    check_call(parents[parent], api.keywords(qual, parent.attr), f"{qual}.{parent.attr}")
                kind = "member"
                break
            else:
                break
            expr = parent
        check_call(parents.get(expr) if getattr(parents.get(expr), "func", None) is expr else None,
                   callee_keywords(kind, qual), qual)

    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        _audit_subclass(cls, bindings, api, problem, check_call, found)
    return found


def _audit_subclass(cls: ast.ClassDef, bindings, api: HumbleAPI, problem, check_call, found: Findings) -> None:
    """``self.X`` in a class deriving from a Humble class: X is the class's own or the base's."""
    bases = []
    for base in cls.bases:
        head, _, rest = ast.unparse(base).partition(".")
        if head not in bindings:
            return  # a base of ours (or none): nothing to check against
        kind, qual = bindings[head]
        hit = api.lookup(f"{qual}.{rest}") if rest else (kind, qual)
        if hit is None or hit[0] != "class":
            return
        bases.append(hit[1])
    if not bases:
        return
    inherited: Set[str] = set()
    for base in bases:
        members = api.members(base)
        if members is None:
            return
        inherited |= members
    own = {s.name for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    own |= {t.id for s in cls.body if isinstance(s, (ast.Assign, ast.AnnAssign))
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target]) if isinstance(t, ast.Name)}
    own |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.ctx, (ast.Store, ast.Del))
            and isinstance(n.value, ast.Name) and n.value.id == "self"}
    for node in ast.walk(cls):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and getattr(func.value.func, "id", "") == "super"):
            found.checked += 1
            if func.attr not in inherited:
                problem(func, f"super().{func.attr}: Humble's {bases[0]} has no such member")
            else:
                check_call(node, api.keywords(bases[0], func.attr), f"{bases[0]}.{func.attr}")
        elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
              and func.attr not in own and func.attr in inherited):
            check_call(node, api.keywords(bases[0], func.attr), f"{bases[0]}.{func.attr}")
    for node in ast.walk(cls):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name)
                and node.value.id == "self" and node.attr not in own):
            found.checked += 1
            if node.attr not in inherited:
                problem(node, f"self.{node.attr} in {cls.name}: neither {cls.name}'s own nor Humble's {bases[0]}'s")


def audit_files(paths, root: Path, api: HumbleAPI) -> Findings:
    total = Findings()
    for path in paths:
        one = audit_source(path.read_text(), str(path.relative_to(root)), api)
        total.problems += one.problems
        total.probes += one.probes
        total.checked += one.checked
    return total
