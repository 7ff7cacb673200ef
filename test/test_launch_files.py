"""The launch and config files, read statically (no `launch` needed, so these also run where ROS 2
launch is not installed): they parse, every launch argument reaches a declared parameter or a
remapping, every executable is a console script of the package, every config file named is installed,
and the params files are what rcl and the nodes accept. The launch files run for real through
`ros2 launch` in test_launch_ros2.py."""

from __future__ import annotations

import ast
import glob
import os
import re
import runpy
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest
import yaml

from depth_attn.paths import REPO_ROOT

MY_LAUNCH_FILES = ("orin.launch.py", "desktop.launch.py")
LAUNCH_BUILDERS = ("depth_attn.ros.camera_launch", "depth_attn.ros.launch_given")


# ------------------------------------------------------------------ setup.py, read as colcon does

@pytest.fixture(scope="module")
def setup_kwargs() -> Dict:
    import setuptools

    captured: Dict = {}
    original, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        os.chdir(REPO_ROOT)
        runpy.run_path(str(REPO_ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup, _ = original, os.chdir(cwd)
    return captured


@pytest.fixture(scope="module")
def console_scripts(setup_kwargs) -> Set[str]:
    return {entry.split("=")[0].strip() for entry in setup_kwargs["entry_points"]["console_scripts"]}


@pytest.fixture(scope="module")
def installed_files(setup_kwargs) -> Dict[str, str]:
    """repository path -> install path (under the prefix)."""
    out = {}
    for dest, files in setup_kwargs["data_files"]:
        for f in files:
            out[str(Path(f))] = f"{dest}/{Path(f).name}"
    return out


# ------------------------------------------------------------------ reading a launch file

def _call_name(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


class LaunchFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        # a launch file whose graph is built by the package (depth_attn.ros.camera_launch) is read with it
        # (and with what those import from depth_attn.ros.launch_given), each once
        included = set()
        for node in self.tree.body:  # (grows while it is walked)
            if isinstance(node, ast.ImportFrom) and node.module in LAUNCH_BUILDERS and node.module not in included:
                included.add(node.module)
                module = REPO_ROOT / (node.module.replace(".", "/") + ".py")
                self.tree.body.extend(ast.parse(module.read_text(), filename=str(module)).body)
        self.aliases: Dict[str, str] = {}  # variable -> LaunchConfiguration name
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = self._config_name(node.value)
                if name:
                    self.aliases[node.targets[0].id] = name

    @staticmethod
    def _config_name(node: ast.AST) -> Optional[str]:
        if _call_name(node) == "LaunchConfiguration" and node.args and isinstance(node.args[0], ast.Constant):
            return node.args[0].value
        return None

    def configs_in(self, node: ast.AST) -> Set[str]:
        found = set()
        for sub in ast.walk(node):
            name = self._config_name(sub)
            if name:
                found.add(name)
            if isinstance(sub, ast.Name) and sub.id in self.aliases:
                found.add(self.aliases[sub.id])
        return found

    def arguments(self) -> Dict[str, Optional[str]]:
        """Declared launch arguments -> default (a literal ARGUMENTS table or DeclareLaunchArgument calls)."""
        args: Dict[str, Optional[str]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                    isinstance(t, ast.Name) and t.id == "ARGUMENTS"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
                for row in node.value.elts:
                    name, default = row.elts[0].value, row.elts[1]
                    args[name] = default.value if isinstance(default, ast.Constant) else self.literal(default.id)
            if _call_name(node) == "DeclareLaunchArgument" and node.args and isinstance(node.args[0], ast.Constant):
                default = next((k.value for k in node.keywords if k.arg == "default_value"), None)
                args[node.args[0].value] = default.value if isinstance(default, ast.Constant) else None
        return args

    def literal(self, name: str) -> object:
        """The value of the module-level constant ``name`` (the launch file's or its builder's)."""
        return next(ast.literal_eval(n.value) for n in self.tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    and any(isinstance(t, ast.Name) and t.id == name
                            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])))

    def function(self, name: str) -> ast.FunctionDef:
        return next(n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef) and n.name == name)

    def nodes(self) -> List[ast.Call]:
        return [n for n in ast.walk(self.tree) if _call_name(n) == "Node"]

    @staticmethod
    def keyword(call: ast.Call, name: str) -> Optional[ast.AST]:
        return next((k.value for k in call.keywords if k.arg == name), None)

    def constant(self, call: ast.Call, name: str) -> Optional[str]:
        value = self.keyword(call, name)
        return value.value if isinstance(value, ast.Constant) else None

    def strings(self) -> Set[str]:
        return {n.value for n in ast.walk(self.tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def launch_files() -> List[Path]:
    return sorted((REPO_ROOT / "launch").glob("*.launch.py"))


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_launch_file_parses_and_names_only_real_executables(path, console_scripts):
    launch = LaunchFile(path)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in launch.tree.body)
    for call in launch.nodes():
        if launch.constant(call, "package") == "depth_attn":
            executable = launch.constant(call, "executable")
            assert executable in console_scripts, f"{path.name}: {executable} is not a console script"


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_config_files_named_by_launch_files_are_installed(path, installed_files):
    named = {s for s in LaunchFile(path).strings() if re.fullmatch(r"[\w.-]+\.(yaml|rviz)", s)}
    for name in named:
        repo_path = f"config/{name}"
        assert (REPO_ROOT / repo_path).is_file(), f"{path.name} names {name}, not in config/"
        assert installed_files.get(repo_path) == f"share/depth_attn/config/{name}", f"{name} is not installed"
    assert installed_files.get(f"launch/{path.name}") == f"share/depth_attn/launch/{path.name}"


@pytest.mark.parametrize("name", MY_LAUNCH_FILES)
def test_every_launch_argument_reaches_a_parameter_or_a_remapping(name):
    from depth_attn.ros.depth_node import PARAMETERS

    launch = LaunchFile(REPO_ROOT / "launch" / name)
    declared = launch.arguments()
    reached: Dict[str, Set[str]] = {a: set() for a in declared}
    node_arguments = launch.literal("NODE_ARGUMENTS")
    for arg in node_arguments:  # passed as the depth_node parameter of the same name, when given
        assert arg in PARAMETERS, f"{name}: {arg} is not a depth_node parameter"
        reached[arg].add("parameter")
    subscribed = {"image", "image/compressed", "camera_info"}
    for call in launch.nodes():
        package, executable = launch.constant(call, "package"), launch.constant(call, "executable")
        if package == "depth_attn":
            assert executable == "depth_node"
            # the params file first, then what the user gave: an argument given beats the params file
            params_file, given = launch.keyword(call, "parameters").elts
            assert launch.configs_in(params_file) == {"params_file"}
            reached["params_file"].add("params_file")
            assert _call_name(given) == "given_parameters"
            builder = launch.function("given_parameters")
            stored = [d.slice for d in ast.walk(builder)
                      if isinstance(d, ast.Subscript) and isinstance(d.ctx, ast.Store)]
            for key in (k for k in stored if isinstance(k, ast.Tuple)):  # ("qos_overrides.", *TOPIC, ".sub...")
                assert key.elts[0].value == "qos_overrides." and key.elts[-1].value == ".subscription.reliability"
            for arg in launch.configs_in(builder) - {"image", "camera_info"}:
                reached[arg].add("parameter")
            for pair in launch.keyword(call, "remappings").elts:
                source = pair.elts[0].value
                assert source in subscribed, f"{name}: remaps {source}, which depth_node does not use"
                for arg in launch.configs_in(pair.elts[1]):
                    reached[arg].add("remapping")
        elif executable == "rviz2":
            for arg in launch.configs_in(call):
                reached[arg].add("rviz")
    missing = [a for a, uses in reached.items() if not uses]
    assert not missing, f"{name}: launch arguments that reach nothing: {missing}"
    for arg, kinds in reached.items():
        if arg not in ("params_file", "rviz", "camera_frame"):
            assert kinds & {"parameter", "remapping"}, f"{name}: {arg} only reaches {kinds}"
    assert reached["params_file"] == {"params_file"}


def test_camera_launch_files_leave_the_model_to_the_params_file():
    """Every argument that is a depth_node parameter defaults to unset (passed only when given), so a
    params file's variant/backend/weights reach the node; the package's files give orin and desktop theirs."""
    for name in MY_LAUNCH_FILES:
        launch = LaunchFile(REPO_ROOT / "launch" / name)
        args = launch.arguments()
        unset = launch.literal("UNSET")
        assert {a: args[a] for a in launch.literal("NODE_ARGUMENTS")} == dict.fromkeys(launch.literal("NODE_ARGUMENTS"),
                                                                                         unset)
        assert args["image_reliability"] == unset and args["rviz"] == "false"
    orin = yaml.safe_load((REPO_ROOT / "config" / "orin.yaml").read_text())["depth_node"]["ros__parameters"]
    assert {k: orin[k] for k in ("variant", "backend", "precision", "device")} == {
        "variant": "meta", "backend": "tensorrt", "precision": "fp16", "device": "cuda"}
    desktop = yaml.safe_load((REPO_ROOT / "config" / "desktop.yaml").read_text())["depth_node"]["ros__parameters"]
    assert "variant" not in desktop and "weights" not in desktop and "weights" not in orin  # the node's: base, auto
    assert desktop["backend"] == "auto"  # TensorRT, else OpenVINO on x86, else ONNX Runtime (issue 28)


def test_launch_argument_values_are_valid_parameter_values():
    from depth_attn.ros.depth_node import CHOICES

    for name in MY_LAUNCH_FILES + ("kitti_eval.launch.py",):
        launch = LaunchFile(REPO_ROOT / "launch" / name)
        unset = launch.literal("UNSET")
        for arg, default in launch.arguments().items():
            if arg in CHOICES and default != unset:
                assert default in CHOICES[arg], f"{name}: {arg} default {default!r}"


# ------------------------------------------------------------------ params files

def config_files() -> List[Path]:
    return sorted((REPO_ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", config_files(), ids=lambda p: p.name)
def test_params_file_is_accepted_by_rcl(path):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.context import Context

    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)  # rcl parses it here
    rclpy.shutdown(context=context)


def _node_sections(section: dict) -> list:
    """The node sections of a params file's top-level entry: itself, or those nested under a namespace
    (Nav2's local_costmap: local_costmap: ros__parameters)."""
    if "ros__parameters" in section:
        return [section]
    return [node for value in section.values() if isinstance(value, dict) for node in _node_sections(value)]


RULE = re.compile(r"^(?:(?P<node>[A-Za-z_][\w]*):)?(?P<source>[~/A-Za-z_][\w/]*):=(?P<target>/?[\w/]+)$")


@pytest.mark.parametrize("path", config_files(), ids=lambda p: p.name)
def test_params_file_sections_match_the_nodes(path):
    from depth_attn.ros import param_schema
    from depth_attn.ros.graph import NODE_TYPES, RUNNER_SECTION

    content = yaml.safe_load(path.read_text())
    assert all(_node_sections(section) for section in content.values())
    runner = content.get(RUNNER_SECTION, {}).get("ros__parameters", {})
    nodes = runner.get("nodes", [])
    assert set(nodes) <= set(NODE_TYPES), f"{path.name}: unknown nodes {set(nodes) - set(NODE_TYPES)}"
    for rule in runner.get("remappings", []):
        match = RULE.match(rule)
        assert match, f"{path.name}: {rule!r} is not an rcl remapping rule"
        assert match["node"] is None or match["node"] in nodes, f"{path.name}: {rule} names a node not started"
        if match["node"] == "depth_node":
            assert match["source"] in ("image", "image/compressed", "camera_info")
    for node, section in content.items():
        if node == RUNNER_SECTION or node not in node_schemas():  # (another package's node: Nav2's costmap)
            continue
        schema = node_schemas()[node]
        for key, value in section["ros__parameters"].items():
            assert key in schema or key.startswith("qos_overrides."), f"{path.name}: {node} has no parameter {key!r}"
            if key not in schema:
                continue
            assert param_schema.check_value(schema, key, value) is None, \
                f"{path.name}: {node}.{key}: {param_schema.check_value(schema, key, value)}"


def node_schemas():
    """Each node's parameter schema (depth_attn.ros.param_schema), by node name."""
    from depth_attn.ros import depth_params, eval_node, player

    return {"depth_node": depth_params.PARAMETERS, "eval_node": eval_node.PARAMETERS, "player": player.PARAMETERS}


@pytest.mark.parametrize("path", config_files(), ids=lambda p: p.name)
def test_params_files_list_only_what_differs_from_the_node_defaults(path):
    for node, schema in node_schemas().items():
        params = yaml.safe_load(path.read_text()).get(node, {}).get("ros__parameters", {})
        same = [k for k, v in params.items() if k in schema and v == schema[k].default]
        assert not same, f"{path.name} restates {node}'s defaults for {same}"


def test_rviz_config_shows_the_node_outputs_in_the_camera_frame():
    rviz = yaml.safe_load((REPO_ROOT / "config" / "depth_attn.rviz").read_text())
    displays = {d["Name"]: d for d in rviz["Visualization Manager"]["Displays"]}
    by_class: Dict[str, List[str]] = {}
    for d in displays.values():
        by_class.setdefault(d["Class"], []).append(d.get("Topic", {}).get("Value"))
    launch_args = LaunchFile(REPO_ROOT / "launch" / "orin.launch.py").arguments()
    assert sorted(by_class["rviz_default_plugins/Image"]) == sorted([launch_args["image"], "/depth/image_rect",
                                                                     "/depth/image_color"])
    assert by_class["rviz_default_plugins/PointCloud2"] == ["/points"]
    cloud = next(d for d in displays.values() if d["Class"] == "rviz_default_plugins/PointCloud2")
    assert cloud["Color Transformer"] == "RGB8" and cloud["Topic"]["Reliability Policy"] == "Reliable"
    camera = next(d for d in displays.values() if d.get("Topic", {}).get("Value") == launch_args["image"])
    assert camera["Topic"]["Reliability Policy"] == "Best Effort"  # cameras publish sensor-data QoS
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == launch_args["camera_frame"]


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_rviz_shows_the_camera_of_its_launch_file(path):
    """rviz:=true gives a working view: RViz's camera display (the config's /camera/image_rect) is remapped
    to the camera the launch file feeds the depth node, and the depth node publishes what RViz shows."""
    launch = LaunchFile(path)
    assert launch.arguments().get("rviz") == "false"
    rviz = next(call for call in launch.nodes() if launch.constant(call, "executable") == "rviz2")
    (source, target), = [pair.elts for pair in launch.keyword(rviz, "remappings").elts]
    assert source.value == "/camera/image_rect"
    depth_node = next(call for call in launch.nodes() if launch.constant(call, "executable") == "depth_node")
    image = next(pair.elts[1] for pair in launch.keyword(depth_node, "remappings").elts
                 if pair.elts[0].value == "image")
    assert ast.dump(target) == ast.dump(image)
    params = yaml.safe_load((REPO_ROOT / "config" / f"{path.name.split('.')[0]}.yaml").read_text())
    depth_params = params["depth_node"]["ros__parameters"]
    overrides = {key.value: launch.configs_in(value) for item in launch.keyword(depth_node, "parameters").elts
                 if isinstance(item, ast.Dict) for key, value in zip(item.keys, item.values, strict=True)
                 if isinstance(key, ast.Constant)}
    from depth_attn.ros.depth_node import PARAMETERS

    try:  # a parameter set by a launch argument when given (kitti_eval's GIVEN table)
        overrides.update({param: {arg} for param, arg in launch.literal("GIVEN")["depth_node"].items()})
    except StopIteration:
        pass
    for output in ("publish_cloud", "publish_color"):
        published = depth_params.get(output, PARAMETERS[output].default)
        assert published is True or overrides.get(output) == {"rviz"}, f"{path.name}: {output}"


def test_data_files_cover_every_launch_and_config_file(installed_files):
    for pattern in ("launch/*.launch.py", "config/*.yaml", "config/*.rviz"):
        for f in glob.glob(str(REPO_ROOT / pattern)):
            rel = str(Path(f).relative_to(REPO_ROOT))
            assert rel in installed_files, f"{rel} is not installed by setup.py"


def test_kitti_eval_depth_node_takes_the_bag_losslessly():
    """The player publishes reliable and kitti_eval's depth_node subscribes the bag's camera topics
    reliable too (ROS 2 QoS overrides naming the topics it is remapped to): best effort, Fast DDS drops
    KITTI frames (1.4 MB) between processes and the evaluation would score none."""
    launch = LaunchFile(REPO_ROOT / "launch" / "kitti_eval.launch.py")
    constants = {n.targets[0].id: n.value.value for n in launch.tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Constant)}
    depth_node = next(call for call in launch.nodes() if launch.constant(call, "executable") == "depth_node")
    remapped = {}
    for pair in launch.keyword(depth_node, "remappings").elts:
        target = pair.elts[1]
        if isinstance(target, ast.Name):
            remapped[pair.elts[0].value] = constants[target.id]
    overrides = {key.value: value.value for item in launch.keyword(depth_node, "parameters").elts
                 if isinstance(item, ast.Dict) for key, value in zip(item.keys, item.values, strict=True)
                 if key.value.startswith("qos_overrides.")}
    assert overrides == {f"qos_overrides.{remapped[t]}.subscription.reliability": "reliable"
                         for t in ("image", "camera_info")}


# ------------------------------------------------------------------ set-up of `ros2 launch` (no ROS install)

def test_setup_without_the_ros_sources_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(["bash", str(REPO_ROOT / "tools" / "setup_ros_launch.sh"), sys.prefix,
                             str(tmp_path / "absent"), str(tmp_path / "stamp")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "absent") in lines[0] and "DEPTH_ATTN_ROS_SRC" in lines[0], lines
    assert not (tmp_path / "stamp").exists()  # the next `make setup` looks again


def test_make_setup_installs_ros_launch_only_without_a_sourced_ros(tmp_path):
    import subprocess

    def plan(*extra):
        return subprocess.run(["make", "-n", "setup", f"VENV={tmp_path / 'venv'}", *extra], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60).stdout

    assert "tools/setup_ros_launch.sh" in plan("DEPTH_ATTN_ROS_SRC=/x/ros2")
    assert "/x/ros2" in plan("DEPTH_ATTN_ROS_SRC=/x/ros2")
    assert "tools/setup_ros_launch.sh" not in plan("ROS_DISTRO=kilted")


def test_launch_tests_name_why_they_skip(monkeypatch, tmp_path):
    from launch_harness import launch_unavailable

    monkeypatch.delenv("ROS_DISTRO", raising=False)
    monkeypatch.setenv("DEPTH_ATTN_ROS_SRC", str(tmp_path / "absent"))
    reason = launch_unavailable(modules=("launch_ros", "no_such_module_for_this_test"))
    assert str(tmp_path / "absent") in reason and "make setup" in reason
    monkeypatch.setenv("ROS_DISTRO", "humble")
    assert "ros-humble-launch-ros" in launch_unavailable(modules=("no_such_module_for_this_test",))
