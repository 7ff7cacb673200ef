"""package.xml is complete for `rosdep install --from-paths src`: every ROS package the code imports,
the bags' message types the player publishes, what the launch files start, and the system Python
packages with rosdep keys; what has none is in requirements/jetson.txt. Each key resolves on Humble
(test/data/rosdep_keys.json, from ros/rosdistro by tools/rosdep_keys.py)."""

from __future__ import annotations

import ast
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Set

from depth_attn.paths import REPO_ROOT

# imported module -> rosdep key (rosdistro's rosdep/python.yaml)
SYSTEM_PYTHON = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "scipy": "python3-scipy",
                 "matplotlib": "python3-matplotlib", "tqdm": "python3-tqdm", "PIL": "python3-pil"}
# imported module -> its pip name in requirements/jetson.txt (no rosdep key for Humble's Ubuntu; torch
# comes from NVIDIA's Jetson wheels, README)
PIP_ONLY = {"torch": "torch", "timm": "timm", "onnx": "onnx", "onnxruntime": "onnxruntime", "rosbags": "rosbags",
            "openvino": "openvino"}
# neither: JetPack's apt package python3-libnvinfer (README "Jetson")
JETPACK = {"tensorrt"}
# ROS Python packages that are not message packages
ROS_PYTHON = {"rclpy", "launch", "launch_ros", "ament_index_python"}
# declared without an import: what else uses them
ALSO_DECLARED = {
    "ros2launch": "`ros2 launch depth_attn ...` runs the launch files",
    "rosbag2_storage_mcap": "`ros2 bag play` (player:=ros2bag) of the MCAP bags kitti2bag writes",
    "python3-pytest": "the tests",
}
KEYS = json.loads((Path(__file__).resolve().parent / "data" / "rosdep_keys.json").read_text())["keys"]


def package_sources():
    return sorted((REPO_ROOT / "depth_attn").rglob("*.py")) + sorted((REPO_ROOT / "launch").glob("*.py"))


def declared(*tags: str) -> Set[str]:
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in tags for e in root.findall(tag)}


def imported_modules(full: bool = False) -> Dict[str, str]:
    """Top-level module (or, ``full``, the whole dotted name) -> the first file importing it (lazy
    imports in functions included)."""
    found: Dict[str, str] = {}
    for path in package_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("import_module", "find_spec")
                  and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names = [node.args[0].value]
            for name in names:
                found.setdefault(name if full else name.partition(".")[0], str(path.relative_to(REPO_ROOT)))
    return found


def message_packages_in_strings() -> Set[str]:
    """``pkg/msg/Type`` literals (the bag writer's and player's types): published by the player."""
    pattern = re.compile(r"^([a-z][a-z0-9_]*)/msg/[A-Z]\w*$")
    out = set()
    for path in package_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
                out.add(pattern.match(node.value).group(1))
    return out


def started_packages() -> Set[str]:
    """Packages the launch files start: launch_ros Node(package=...) and ExecuteProcess `ros2 bag`."""
    out = set()
    for path in sorted((REPO_ROOT / "launch").glob("*.py")) + [REPO_ROOT / "depth_attn" / "ros" / "camera_launch.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "package" and isinstance(keyword.value, ast.Constant):
                    out.add(keyword.value.value)
                if keyword.arg == "cmd":  # a list, or lists joined with +
                    for part in (n for n in ast.walk(keyword.value) if isinstance(n, ast.List)):
                        words = [w.value for w in part.elts[:2] if isinstance(w, ast.Constant)]
                        if words == ["ros2", "bag"]:
                            out.add("ros2bag")
    return out - {"depth_attn"}


def ros_module(name: str) -> bool:
    return name in ROS_PYTHON or name.endswith(("_msgs", "_interfaces", "_srvs"))


def test_every_import_is_classified():
    """A new third-party import must be declared somewhere: package.xml (ROS or a rosdep key) or jetson.txt."""
    stdlib = set(sys.stdlib_module_names) | {"depth_attn", "__future__"}
    known = stdlib | set(SYSTEM_PYTHON) | set(PIP_ONLY) | JETPACK
    unknown = {m: f for m, f in imported_modules().items() if m not in known and not ros_module(m)}
    assert not unknown, f"imports with no dependency declared (package.xml or requirements/jetson.txt): {unknown}"


def test_package_xml_declares_every_ros_package_imported_published_or_started():
    exec_depends = declared("exec_depend", "depend")
    imports = imported_modules()
    needed = {m for m in imports if ros_module(m)} | message_packages_in_strings() | started_packages()
    needed |= {SYSTEM_PYTHON[m] for m in imports if m in SYSTEM_PYTHON}
    if any(m.startswith("rclpy.lifecycle") for m in imported_modules(full=True)):
        needed.add("lifecycle_msgs")  # a lifecycle node's get_state/change_state services (Nav2's manager)
    assert {"rviz2", "ros2bag", "tf2_msgs", "rcl_interfaces", "builtin_interfaces", "ament_index_python"} <= needed
    missing = needed - exec_depends
    assert not missing, f"package.xml lacks exec_depend for: {sorted(missing)}"
    unused = declared("exec_depend", "depend", "test_depend") - needed - set(ALSO_DECLARED)
    assert not unused, f"package.xml declares what nothing uses: {sorted(unused)}"


def test_every_dependency_resolves_with_rosdep_on_humble():
    depends = declared("exec_depend", "depend", "test_depend", "build_depend", "buildtool_depend")
    missing = sorted(depends - set(KEYS))
    assert not missing, (f"no Humble rosdep key known for {missing}: run tools/rosdep_keys.py --rosdistro "
                         "<git dir of ros/rosdistro>, and move what has no key to requirements/jetson.txt")
    for key in depends:
        entry = KEYS[key]
        assert entry.get("ubuntu") or entry.get("version"), (key, entry)  # a package on jammy, or a release
    assert not set(PIP_ONLY.values()) & depends and not {f"python3-{p}" for p in PIP_ONLY.values()} & depends


def test_jetson_requirements_hold_what_has_no_rosdep_key():
    text = (REPO_ROOT / "requirements" / "jetson.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    pins = dict(re.match(r"^([A-Za-z0-9_.-]+)\s*==\s*(\S+)$", line).groups() for line in lines if line)
    names = {name.lower() for name in pins}
    imports = imported_modules()
    pip_needed = {PIP_ONLY[m] for m in imports if m in PIP_ONLY} - {"torch"}  # torch: NVIDIA's wheel, README
    assert pip_needed <= names, f"requirements/jetson.txt lacks {sorted(pip_needed - names)}"
    assert "torch" not in names and "torchvision" not in names  # PyPI's aarch64 torch has no Jetson CUDA
    assert not names & {"opencv-python", "opencv-python-headless", "scipy", "matplotlib", "tqdm", "pyyaml", "pillow"}
    assert pins["numpy"].startswith("1.")  # Humble's apt cv2 and message packages are built against numpy 1.x


def test_readmes_jetson_steps_use_these_files():
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## On a Jetson"):]
    section = section[:section.index("\n## ", 5)]
    for step in ("rosdep install --from-paths src --ignore-src -y", "python3 -m venv --system-site-packages",
                 "pip install -r src/depth_attn/requirements/jetson.txt", "python -m colcon build",
                 "python3-libnvinfer", "PYTHONPATH"):
        assert step in section, step
    numpy = re.search(r"numpy==(\S+)", (REPO_ROOT / "requirements" / "jetson.txt").read_text()).group(1)
    assert f"numpy=={numpy}" in section  # the repair the README gives is the pin
