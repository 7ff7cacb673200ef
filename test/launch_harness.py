"""`ros2 launch` for real in the suite: a colcon install of the package in a temporary workspace (one
per test session, see conftest's ``colcon_workspace``), launch runs through the ros2 command line with
that workspace sourced, each bounded in time and its whole process group ended whatever happens, and
a probe in a private rclpy context on the run's own DDS domain.

Without ROS 2's launch (no ROS sourced and `make setup` found no sources in ../shared/vendor/ros2),
``launch_unavailable()`` says why and the launch tests skip with that reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from depth_attn.paths import REPO_ROOT, shared_dir

LAUNCH_MODULES = ("launch", "launch_ros", "ros2launch", "ros2cli", "composition_interfaces")


def ros_sources() -> Path:
    """Where `make setup` takes ROS 2 launch from (the Makefile's ROS_SRC)."""
    if os.environ.get("DEPTH_ATTN_ROS_SRC"):
        return Path(os.environ["DEPTH_ATTN_ROS_SRC"])
    return shared_dir() / "vendor" / "ros2"


def venv_bin() -> Path:
    return Path(sys.executable).parent


def launch_unavailable(modules: Sequence[str] = LAUNCH_MODULES) -> Optional[str]:
    """Why `ros2 launch` cannot run here, or None."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        distro = os.environ.get("ROS_DISTRO")
        if distro:
            return (f"ROS 2 {distro} is sourced without {', '.join(missing)} "
                    f"(install ros-{distro}-launch-ros and ros-{distro}-ros2launch)")
        if not ros_sources().is_dir():
            return (f"ROS 2 launch is not installed: its sources are not at {ros_sources()} (set DEPTH_ATTN_ROS_SRC), "
                    "so `make setup` could not install them")
        return f"ROS 2 launch is not installed ({', '.join(missing)} missing): run `make setup`"
    if shutil.which("ros2", path=f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return "the ros2 command is not on PATH"
    if colcon() is None:
        return "colcon is not installed (requirements/ros.txt): run `make setup`"
    return None


def colcon() -> Optional[str]:
    local = venv_bin() / "colcon"
    return str(local) if local.exists() else shutil.which("colcon")


def build_workspace(root: Path, timeout: float = 300.0) -> Path:
    """`colcon build` of the package (the checkout, symlinked into root/src); returns root/install."""
    src = root / "src"
    src.mkdir(parents=True)
    (src / "depth_attn").symlink_to(REPO_ROOT, target_is_directory=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [colcon(), "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install",
         "--event-handlers", "console_direct-"],
        cwd=root, capture_output=True, text=True, env=env, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"colcon build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return root / "install"


def free_domain_id() -> int:
    """A DDS domain of its own for one launch run (the rest of the suite uses 1..100, see conftest)."""
    return random.randint(101, 200)


def launch_env(home: Path, log_dir: Path, domain_id: int, empty: Path) -> Dict[str, str]:
    """The environment a user has after `make setup` (and a sourced workspace, added by the command):
    the venv's ros2 on PATH and the venv as an ament prefix (its rclpy, launch and interfaces); nothing
    of the checkout or of ../shared (DEPTH_ATTN_SHARED/DATA point at an empty folder), so the installed
    package must find its weights and configs in its share folder."""
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    if not env.get("ROS_DISTRO"):
        prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(prefixes + [sys.prefix])
    for name in ("PYTHONPATH", "COLCON_PREFIX_PATH"):
        env.pop(name, None)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOG_DIR=str(log_dir),
        DEPTH_ATTN_HOME=str(home),
        DEPTH_ATTN_SHARED=str(empty),
        DEPTH_ATTN_DATA=str(empty),
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    return env


# Runs a command as a child subreaper: every process it starts that outlives its parent (a node that
# `ros2 launch` left behind, as it does on SIGTERM) is reparented here, so every exit status is known.
# It ignores SIGINT/SIGTERM itself (they are for the launch and its nodes, which get the terminal's
# defaults back) and prints 'REAPED {"launch": pid, "codes": {pid: exit code}}' once the last one ended.
REAPER = r"""
import ctypes, json, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
def defaults():
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
child = subprocess.Popen(sys.argv[1:], preexec_fn=defaults)
codes = {}
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    codes[pid] = os.waitstatus_to_exitcode(status)
print("REAPED " + json.dumps({"launch": child.pid, "codes": codes}), flush=True)
code = codes.get(child.pid, 1)
sys.exit(code if code >= 0 else 128 - code)
"""


class LaunchRun:
    """`ros2 launch ARGS...` with INSTALL/setup.bash sourced, in a new session (its own process group,
    as in a terminal, so that a Ctrl-C can go to the whole group), under the REAPER. Output is
    collected as it comes; ``exit_codes`` maps every pid that ended to its exit code once all ended."""

    def __init__(self, install: Path, args: Sequence[str], env: Dict[str, str], cwd: Path) -> None:
        setup = shlex.quote(str(install / "setup.bash"))
        self.command = f"source {setup} && exec ros2 launch {' '.join(shlex.quote(a) for a in args)}"
        self.process = subprocess.Popen(
            [sys.executable, "-c", REAPER, "bash", "-c", self.command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.pgid = self.process.pid
        self.exit_codes: Dict[int, int] = {}
        self._lines: List[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first match of ``pattern`` in the output; fails (with the output) on timeout or exit."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = regex.search("".join(self._lines))
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{pattern!r} not in the output of `{self.command}` "
                                         f"(exit {self.process.poll()}):\n{''.join(self._lines)[-6000:]}")
                self._changed.wait(min(left, 0.5))

    def pids(self, name: str) -> List[int]:
        """The pids launch reported for processes named ``name`` ('[INFO] [name-1]: process started with pid [N]')."""
        return [int(m) for m in re.findall(rf"\[{re.escape(name)}-\d+\]: process started with pid \[(\d+)\]",
                                           self.output)]

    def exit_code_of(self, pid: int) -> Optional[int]:
        """A launched process's exit code: as launch reported it (launch reaps its own children), or
        as the reaper saw it (those launch left behind); None if it is not known to have ended."""
        if pid in self.exit_codes:
            return self.exit_codes[pid]
        if re.search(rf"process has finished cleanly \[pid {pid}\]", self.output):
            return 0
        died = re.search(rf"process has died \[pid {pid}, exit code (-?\d+)", self.output)
        return int(died.group(1)) if died else None

    def interrupt(self, sig: int = signal.SIGINT, group: bool = True) -> None:
        """A Ctrl-C in the terminal is SIGINT to the whole process group (launch and every node)."""
        try:
            if group:
                os.killpg(self.pgid, sig)
            else:
                self.process.send_signal(sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int:
        """The exit code of ros2 launch, once it and every process it started have ended; on timeout
        everything is killed and the test fails."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"`{self.command}` did not end within {timeout:g} s:\n{self.output[-6000:]}") from None
        self._reader.join(5.0)
        match = re.search(r"^REAPED (.*)$", self.output, re.MULTILINE)
        assert match, f"the reaper did not report:\n{self.output[-4000:]}"
        reaped = json.loads(match.group(1))
        self.exit_codes = {int(pid): code for pid, code in reaped["codes"].items()}
        return self.exit_codes[reaped["launch"]]

    def kill(self) -> None:
        """SIGKILL to the whole process group (the launch and whatever it started)."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.kill()
        if self.process.stdout:
            self._reader.join(5.0)
            self.process.stdout.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def show_args(install: Path, launch_file: str, env: Dict[str, str], cwd: Path, timeout: float = 60.0) -> str:
    setup = shlex.quote(str(install / "setup.bash"))
    result = subprocess.run(["bash", "-c", f"source {setup} && exec ros2 launch depth_attn {launch_file} --show-args"],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def parse_show_args(text: str) -> Dict[str, Dict[str, str]]:
    """ros2launch's listing -> {name: {'description': ..., 'default': ...}}."""
    found = {}
    entry = re.compile(r"^    '(?P<name>[^']+)':\*?\n        (?P<description>.*)\n"
                       r"(?:        \(default: (?P<default>.*)\)\n)?", re.MULTILINE)
    for m in entry.finditer(text + "\n"):
        found[m["name"]] = {"description": m["description"], "default": m["default"]}
    return found
