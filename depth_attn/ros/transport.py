"""A DDS transport that carries camera-size images between processes (issue 14).

With Fast DDS's default settings a 1242x375 rgb8 image (1.4 MB) published best effort from another
process reached a plain rclpy subscriber 0 times in 10: the default shared-memory segment (0.5 MB)
cannot hold one frame, so it goes as ~22 UDP fragments, any one lost = the frame lost. The fix is a
shared-memory segment large enough for several frames: the Fast DDS XML profile shipped as
``config/fastdds_large_data.xml`` (16 MB segment, UDP kept for other hosts), which every Fast DDS
from Humble's 2.6 to Kilted's 3.x reads. Measured at 10 Hz, player -> depth node -> eval node as
three processes (test/test_graph_processes.py, Kilted's Fast DDS): 12 of 12 frames with the profile,
4 of 12 with the defaults and 4 of 12 with Fast DDS's builtin ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``
(which therefore is only an option here: ``DEPTH_ATTN_TRANSPORT=large_data``).

Every process of the graph needs the same setting, the camera driver included, and it must be in
the environment before the process creates its first ROS context. ``large_data_environment`` says
what to set; the launch files and ``depth-attn run`` apply it. Nothing is changed where the user has
chosen already (any of ``USER_CHOICES`` set, or another RMW than Fast DDS), or where
``DEPTH_ATTN_TRANSPORT=default`` asks for Fast DDS's defaults.

No ROS import here: it is read by launch files and the CLI before rclpy is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Mapping, Optional

PROFILE_NAME = "fastdds_large_data.xml"
# Fast DDS 2.x (Humble's 2.6, Iron's 2.10, Jazzy's 2.14) reads only the first name, 3.x (Kilted's) only
# the second: both are set, so every Fast DDS finds the profile whatever ROS_DISTRO says.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
USER_CHOICES = ("FASTDDS_BUILTIN_TRANSPORTS", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
CHOICE = "DEPTH_ATTN_TRANSPORT"  # profile (default) | large_data (Fast DDS >= 2.13's builtin) | default


def profile_path() -> Path:
    """The shipped XML profile (the share folder of a colcon install, or the checkout)."""
    from depth_attn.paths import share_dir

    return share_dir() / "config" / PROFILE_NAME


def large_data_environment(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment variables to set so camera-size images cross processes; empty when the
    RMW is not Fast DDS, the user has chosen a transport already, or DEPTH_ATTN_TRANSPORT=default."""
    env = os.environ if environ is None else environ
    choice = env.get(CHOICE, "").strip().lower() or "profile"
    if choice not in ("profile", "large_data", "default"):
        raise ValueError(f"{CHOICE} must be profile, large_data or default, not {choice!r}")
    if choice == "default":
        return {}
    rmw = env.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return {}  # Cyclone DDS, Zenoh, Connext: their own settings
    if any(env.get(name) for name in USER_CHOICES):
        return {}
    if choice == "large_data":
        return {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    return {name: str(profile_path()) for name in PROFILE_VARIABLES}


def apply_large_data_transport(environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Set ``large_data_environment`` in ``environ`` (default: this process's, before rclpy.init);
    returns what was set."""
    env = os.environ if environ is None else environ
    changes = large_data_environment(env)
    env.update(changes)
    return changes
