"""ament_python package setup: `colcon build` in a ROS 2 workspace, or `pip install -e .`."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_attn"


def tree(folder):
    """data_files entries installing every file under ``folder`` to share/depth_attn/<folder>/..."""
    entries = []
    for root, _, files in sorted(os.walk(folder)):
        if files:
            entries.append((f"share/{PACKAGE}/{root}", sorted(os.path.join(root, f) for f in files)))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.cli": ["help.yaml"]},  # every command's --help text
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", ["models/README.md"]),
        (f"share/{PACKAGE}/weights", glob("weights/*.pth") + glob("weights/*.json") + glob("weights/*.yaml") + glob("weights/LICENSE*")),
        *tree("sample"),  # the KITTI sample the demo plays without the shared data
    ],
    install_requires=["setuptools"],
    python_requires=">=3.10",
    zip_safe=False,
    maintainer="depth_attn maintainers",
    maintainer_email="maintainers@depth-attn.invalid",
    description="Efficient-attention monocular metric depth for ROS 2",
    license="MIT",
    entry_points={
        "console_scripts": [
            "depth-attn = depth_attn.cli:main",
            "depth_node = depth_attn.ros.depth_node:main",
            "eval_node = depth_attn.ros.eval_node:main",
            "player = depth_attn.ros.player:main",
        ],
    },
)
