#!/usr/bin/env bash
# `ros2 launch` without a ROS install: ROS 2's launch, launch_ros and ros2cli into the venv from their
# unmodified sources (they have no PyPI wheels), and composition_interfaces (which launch_ros imports)
# built with colcon into the venv, next to the Kilted wheels of requirements/ros.txt. The recipe of
# ../shared/vendor/ros2/SOURCES.md. Run by `make setup` where no ROS 2 is sourced; writes STAMP when done.
#
#   tools/setup_ros_launch.sh VENV SOURCES STAMP
#
# Sources absent: one line saying so, exit 0 (the launch tests then skip, naming why).
set -euo pipefail

VENV=$(cd "${1:?usage: $0 VENV SOURCES STAMP}" && pwd)
SRC=${2:?usage: $0 VENV SOURCES STAMP}
STAMP=${3:?usage: $0 VENV SOURCES STAMP}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"

for folder in launch/launch launch_ros/launch_ros launch_ros/ros2launch ros2cli/ros2cli \
              rcl_interfaces/composition_interfaces; do
  if [ ! -d "$SRC/$folder" ]; then
    echo "make setup: no ROS 2 launch sources at $SRC (set DEPTH_ATTN_ROS_SRC): \`ros2 launch\` not installed, its tests skip"
    exit 0
  fi
done
SRC=$(cd "$SRC" && pwd)
started=$(date +%s)
echo "make setup: installing ROS 2 launch and ros2cli from $SRC into $VENV (once)"

# 1. What they need from PyPI (pinned).
"$PY" -m pip install -q -r "$REPO/requirements/ros-launch.txt"

# 2. Build tools for composition_interfaces: CMake (the PyPI wheel where the system has none) and a C/C++ compiler.
if ! command -v cmake >/dev/null 2>&1 && [ ! -x "$VENV/bin/cmake" ]; then
  "$PY" -m pip install -q cmake==3.31.6
fi
for compiler in cc c++; do
  if ! command -v "$compiler" >/dev/null 2>&1; then
    echo "make setup: building composition_interfaces needs a C and C++ compiler ($compiler not found; Debian/Ubuntu: apt-get install g++)" >&2
    exit 1
  fi
done
PY_INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NUMPY_INCLUDE=$("$PY" -c 'import numpy; print(numpy.get_include())')
if [ ! -f "$PY_INCLUDE/Python.h" ]; then
  echo "make setup: building composition_interfaces needs the Python headers ($PY_INCLUDE/Python.h; Debian/Ubuntu: apt-get install python3-dev)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/depth_attn_ros_launch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 3. The Python packages, from a writable copy (setuptools writes build/ and *.egg-info beside the sources).
cp -R "$SRC/launch" "$SRC/launch_ros" "$SRC/ros2cli" "$work/"
chmod -R u+w "$work"
find "$work" -mindepth 3 -maxdepth 3 -type d \( -name build -o -name '*.egg-info' \) -prune -exec rm -rf {} +
# --no-deps: their setup.py names ament_index_python, whose PyPI name is ros-ament-index-python (installed above)
"$PY" -m pip install -q --no-deps --no-build-isolation \
  "$work/launch/launch" "$work/launch/launch_xml" "$work/launch/launch_yaml" \
  "$work/launch_ros/launch_ros" "$work/launch_ros/ros2launch" \
  "$work/ros2cli/ros2cli" "$work/ros2cli/ros2pkg"

# 4. The wheels' CMake export files name the build machine's Python and numpy include folders
#    (/opt/python/cp3XY-cp3XY/...): point them at this venv's (idempotent).
{ grep -rl --include='*.cmake' '/opt/python/cp3' "$VENV/share" 2>/dev/null || true; } | while read -r file; do
  sed -i -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/_core/include#$NUMPY_INCLUDE#g" \
         -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python3\.[0-9]*#$PY_INCLUDE#g" "$file"
done

# 5. composition_interfaces, built with colcon and installed into the venv (an ament prefix like the wheels'):
#    its Python module lands in the venv's site-packages, its libraries in VENV/lib.
mkdir -p "$work/ws/src"
cp -R "$SRC/rcl_interfaces/composition_interfaces" "$work/ws/src/"
chmod -R u+w "$work/ws/src"
if ! env PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" \
    "$VENV/bin/colcon" --log-base "$work/ws/log" build --base-paths "$work/ws/src" \
    --build-base "$work/ws/build" --install-base "$VENV" --merge-install \
    --event-handlers console_cohesion- console_start_end- console_stderr- status- summary- \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$PY" >"$work/colcon.log" 2>&1; then
  tail -n 40 "$work/colcon.log" >&2
  find "$work/ws/log" -name stdout_stderr.log -exec tail -n 40 {} + >&2 || true
  echo "make setup: colcon build of composition_interfaces failed (above)" >&2
  exit 1
fi

# 6. It works: the modules import and the command answers.
"$PY" -c "import launch, launch_ros, ros2launch, composition_interfaces.srv"
"$VENV/bin/ros2" launch --help >/dev/null
echo "$SRC" >"$STAMP"
echo "make setup: \`ros2 launch\` installed in $(( $(date +%s) - started )) s"
