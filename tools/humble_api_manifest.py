#!/usr/bin/env python3
"""Write test/data/humble_api.json: the names every module of rclpy, launch and launch_ros defines in
ROS 2 Humble, read from their humble sources (git directories, e.g. mirrors of github.com/ros2/rclpy,
ros2/launch, ros2/launch_ros). Run once; the result is checked in as data and read by
test/test_humble_api.py, which checks the package's imports, ``rclpy.X.Y`` uses, members and keyword
arguments against it.

    python3 tools/humble_api_manifest.py --rclpy RCLPY_GIT --launch LAUNCH_GIT --launch-ros LAUNCH_ROS_GIT \\
        [--ref humble] [--out test/data/humble_api.json]
    (the same with --ref jazzy --out test/data/jazzy_api.json for Jazzy's)

Per module: ``names`` (every public top-level name: definitions, assignments, imports), ``aliases``
(names bound by an import: what they stand for), ``classes`` (bases, public members including
``self.X`` assignments, each method's parameter names) and ``functions`` (parameter names). Read with ``ast`` only:
nothing of the sources is imported or run.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from pathlib import Path
from typing import Dict, List

REPO_ROOT = Path(__file__).resolve().parent.parent
# (command-line option, repository, folder of the Python package in it, top-level package)
SOURCES = (
    ("rclpy", "github.com/ros2/rclpy", "rclpy/rclpy", "rclpy"),
    ("launch", "github.com/ros2/launch", "launch/launch", "launch"),
    ("launch_ros", "github.com/ros2/launch_ros", "launch_ros/launch_ros", "launch_ros"),
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def public(name: str) -> bool:
    """Private names (``_x``) are no API to audit against: a use of one fails the check."""
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def signature(fn: ast.FunctionDef) -> dict:
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    out = {"params": names, "varkw": args.kwarg is not None}
    if args.kwarg is not None:  # **kwargs handed on to the base class: its keywords are accepted too
        for node in ast.walk(fn):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
                    and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "super"
                    and any(k.arg is None and getattr(k.value, "id", "") == args.kwarg.arg for k in node.keywords)):
                out["kwargs_to_base"] = True
    return out


class ModuleReader:
    def __init__(self, module: str, is_package: bool, tree: ast.Module) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.tree = tree
        self.names: set = set()
        self.aliases: Dict[str, str] = {}
        self.star: List[str] = []
        self.classes: Dict[str, dict] = {}
        self.functions: Dict[str, dict] = {}

    def absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = self.package.split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def statements(self, body):
        """Top-level statements, including those under top-level if/try (TYPE_CHECKING, fallbacks)."""
        for stmt in body:
            if isinstance(stmt, ast.If):
                yield from self.statements(stmt.body + stmt.orelse)
            elif isinstance(stmt, ast.Try):
                yield from self.statements(stmt.body + stmt.orelse + stmt.finalbody
                                           + [s for h in stmt.handlers for s in h.body])
            else:
                yield stmt

    def read(self) -> dict:
        for stmt in self.statements(self.tree.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.names.add(stmt.name)
                if public(stmt.name):
                    self.functions[stmt.name] = signature(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.names.add(stmt.name)
                self.classes[stmt.name] = self.read_class(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            self.names.add(node.id)
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    local = alias.asname or alias.name.partition(".")[0]
                    self.names.add(local)
                    self.aliases[local] = alias.name if alias.asname else local
            elif isinstance(stmt, ast.ImportFrom):
                source = self.absolute(stmt)
                for alias in stmt.names:
                    if alias.name == "*":
                        self.star.append(source)
                        continue
                    local = alias.asname or alias.name
                    self.names.add(local)
                    self.aliases[local] = f"{source}.{alias.name}"
        keep = {n for n in self.names if public(n)}
        return {"names": sorted(keep), "aliases": {k: v for k, v in sorted(self.aliases.items()) if k in keep},
                "star_imports": self.star, "classes": {k: v for k, v in self.classes.items() if k in keep},
                "functions": self.functions}

    def qualify(self, expr: ast.expr) -> str:
        """A base-class expression -> its dotted name in these sources, or 'external:...'."""
        if isinstance(expr, ast.Subscript):  # Generic[T], Node[...]
            expr = expr.value
        dotted = ast.unparse(expr)
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            return self.aliases[head] + (f".{rest}" if rest else "")
        if not rest and any(isinstance(s, ast.ClassDef) and s.name == head for s in self.statements(self.tree.body)):
            return f"{self.module}.{head}"
        return f"external:{dotted}"

    def read_class(self, cls: ast.ClassDef) -> dict:
        members = set()
        methods: Dict[str, dict] = {}
        for stmt in cls.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                members.add(stmt.name)
                if not isinstance(stmt, ast.ClassDef) and public(stmt.name):
                    methods[stmt.name] = signature(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                    if isinstance(target, ast.Name):
                        members.add(target.id)
        for node in ast.walk(cls):  # instance attributes: self.X = ... in any method
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                members.add(node.attr)
        return {"bases": [self.qualify(b) for b in cls.bases if ast.unparse(b) != "object"],
                "members": sorted(m for m in members if public(m)), "methods": dict(sorted(methods.items()))}


def read_package(repo: Path, ref: str, folder: str, top: str) -> Dict[str, dict]:
    modules = {}
    for path in sorted(git(repo, "ls-tree", "-r", "--name-only", ref, folder).split()):
        if not path.endswith(".py"):
            continue
        rel = Path(path).relative_to(folder).with_suffix("")
        is_package = rel.name == "__init__"
        parts = [top, *rel.parts[:-1]] if is_package else [top, *rel.parts]
        source = git(repo, "show", f"{ref}:{path}")
        modules[".".join(parts)] = ModuleReader(".".join(parts), is_package, ast.parse(source)).read()
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, repository, _, _ in SOURCES:
        parser.add_argument(f"--{option.replace('_', '-')}", dest=option, type=Path, required=True,
                            help=f"git directory of {repository}")
    parser.add_argument("--ref", default="humble", help="branch, tag or commit to read (default: humble)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test" / "data" / "humble_api.json")
    args = parser.parse_args()
    sources, modules = {}, {}
    for option, repository, folder, top in SOURCES:
        repo = getattr(args, option)
        commit = git(repo, "rev-parse", f"{args.ref}^{{commit}}").strip()
        sources[top] = {
            "repository": repository, "ref": args.ref, "commit": commit,
            "describe": git(repo, "describe", "--tags", commit).strip(),
            "commit_date": git(repo, "log", "-1", "--format=%cI", commit).strip(),
            "folder": folder,
        }
        modules.update(read_package(repo, commit, folder, top))
    manifest = {
        "about": f"Names each module of rclpy, launch and launch_ros defines on their {args.ref} branches, "
                 "generated by tools/humble_api_manifest.py from the sources below (read with ast, nothing imported); "
                 "checked by test/test_humble_api.py",
        "generated_from": sources,
        "modules": modules,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # one module a line: small, and a regenerated manifest diffs by module
    lines = [f" {json.dumps(name)}: {json.dumps(entry, separators=(',', ':'), sort_keys=True)}"
             for name, entry in sorted(modules.items())]
    head = json.dumps({k: v for k, v in manifest.items() if k != "modules"}, indent=1)[:-2]
    args.out.write_text(head + ',\n "modules": {\n' + ",\n".join(lines) + "\n }\n}\n")
    print(f"{args.out}: {len(modules)} modules")


if __name__ == "__main__":
    main()
