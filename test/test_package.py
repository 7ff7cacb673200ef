"""The repository is a ROS 2 ament_python package: package.xml, and a real `colcon build`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from depth_attn.paths import REPO_ROOT

REQUIRED_EXEC_DEPENDS = {
    "rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "diagnostic_msgs", "launch", "launch_ros",
    "python3-numpy", "python3-opencv",
}
EXECUTABLES = {"depth-attn", "depth_node", "eval_node"}


def test_package_xml_is_format_3_ament_python_with_exec_depends():
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "depth_attn"
    assert REQUIRED_EXEC_DEPENDS <= {e.text for e in root.findall("exec_depend")}
    assert root.find("export/build_type").text == "ament_python"
    assert (REPO_ROOT / "resource" / "depth_attn").is_file()


def _colcon() -> str:
    colcon = shutil.which("colcon") or str(Path(sys.executable).parent / "colcon")
    if not Path(colcon).exists():
        pytest.fail("colcon is not installed: run `make setup` (colcon-common-extensions is in requirements/ros.txt)")
    return colcon


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src"
    src.mkdir()
    (src / "depth_attn").symlink_to(REPO_ROOT, target_is_directory=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [_colcon(), "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install",
         "--event-handlers", "console_direct-"],
        cwd=ws, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ws / "install" / "depth_attn"


def test_colcon_build_installs_share_and_executables(colcon_install):
    share = colcon_install / "share" / "depth_attn"
    assert (share / "package.xml").is_file()
    assert (colcon_install / "share" / "ament_index" / "resource_index" / "packages" / "depth_attn").is_file()
    assert (share / "models" / "README.md").is_file()
    for folder, patterns in (("launch", ("*.launch.py",)), ("config", ("*.yaml", "*.rviz", "*.xml"))):
        expected = {p.name for pattern in patterns for p in (REPO_ROOT / folder).glob(pattern)}
        installed = {p.name for p in (share / folder).glob("*")} if (share / folder).exists() else set()
        assert expected == installed, f"{folder}: {expected ^ installed}"
    lib = colcon_install / "lib" / "depth_attn"
    assert EXECUTABLES <= {p.name for p in lib.iterdir() if os.access(p, os.X_OK)}
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    assert any(site.glob("depth_attn*")), "the Python package is not installed"


def test_colcon_install_carries_the_kitti_sample_and_finds_it(colcon_install):
    """A ROS user's install plays the demo without the shared data: the sample is under share/ and the
    installed package finds it there (not in the checkout)."""
    share = colcon_install / "share" / "depth_attn"
    repo_files = {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "sample").rglob("*") if p.is_file()}
    installed = {p.relative_to(share) for p in (share / "sample").rglob("*") if p.is_file()}
    assert repo_files == installed and len(repo_files) >= 20
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    found = subprocess.run(
        [sys.executable, "-c", "from depth_attn.data.sample import sample_drive; print(sample_drive())"],
        env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60, cwd=colcon_install)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == share / "sample" / "kitti" / "2011_09_26" / "2011_09_26_drive_0023_sync"


def test_colcon_install_carries_every_commands_help(colcon_install):
    """The --help texts live in depth_attn/cli/help.yaml: the installed package (not the checkout) has them."""
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    cli = "import sys; from depth_attn.cli import main; sys.exit(main())"
    shown = subprocess.run([sys.executable, "-c", cli, "weights", "import", "--help"],
                           env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60,
                           cwd=colcon_install)
    assert shown.returncode == 0, shown.stderr
    assert "depth-attn weights import meter-xxs-kitti" in shown.stdout
    where = subprocess.run([sys.executable, "-c", "import depth_attn.cli.common as c; print(c.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60,
                           cwd=colcon_install)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout


def test_colcon_install_resolves_auto_weights_from_its_share_folder(colcon_install, tmp_path):
    """weights: auto in an installed package finds the shipped checkpoints under share/depth_attn/weights,
    without ../shared (pointed at an empty folder) and without the source checkout."""
    share = colcon_install / "share" / "depth_attn"
    assert {p.name for p in (REPO_ROOT / "weights").iterdir()} == {p.name for p in (share / "weights").iterdir()}
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    empty = tmp_path / "no_shared"
    empty.mkdir()
    code = ("from depth_attn import weights\n"
            "for v in ('base', 'meta', 'pyra', 'moh'):\n"
            "    name = weights.resolve_auto('meter', 'tiny', v)\n"
            "    print(v, name, weights.locate(name))\n")
    env = dict(os.environ, PYTHONPATH=str(site), DEPTH_ATTN_SHARED=str(empty), DEPTH_ATTN_HOME=str(tmp_path / "home"))
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                           cwd=colcon_install)
    assert found.returncode == 0, found.stderr
    lines = dict((line.split()[0], line.split()[1:]) for line in found.stdout.splitlines())
    assert lines["base"][0] == "meter-xxs-kitti" and lines["meta"][0] == "meter-xxs-meta-kitti"
    for name, path in lines.values():
        assert Path(path).parent == share / "weights", (name, path)
