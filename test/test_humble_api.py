"""Every rclpy / launch / launch_ros API the package uses exists in ROS 2 Humble (the Jetson's ROS) and
Jazzy: checked against the names those modules define in their humble and jazzy sources
(test/data/humble_api.json, jazzy_api.json, generated once by tools/humble_api_manifest.py with
--ref humble / --ref jazzy; see test/humble_api.py for what is checked). Kilted's are the ones the
other tests run here."""

from __future__ import annotations

import textwrap

import pytest
from humble_api import MANIFEST, HumbleAPI, audit_files, audit_source

from depth_attn.paths import REPO_ROOT

API = HumbleAPI()


def package_sources():
    return sorted((REPO_ROOT / "depth_attn").rglob("*.py")) + sorted((REPO_ROOT / "launch").glob("*.py"))


def test_the_manifest_is_humbles():
    """Generated from the humble branches (rclpy 3.3.x, launch 1.0.x, launch_ros 0.19.x), with facts of
    Humble that its release notes state: lifecycle nodes are there, Iron's YAML parameter reader is not."""
    versions = {name: source["describe"] for name, source in API.generated_from.items()}
    assert versions["rclpy"].startswith("3.3.") and versions["launch"].startswith("1.0.")
    assert versions["launch_ros"].startswith("0.19.")
    assert all(source["ref"] == "humble" and len(source["commit"]) == 40 for source in API.generated_from.values())
    assert API.lookup("rclpy.lifecycle.LifecycleNode") == ("class", "rclpy.lifecycle.node.LifecycleNode")
    assert API.lookup("rclpy.lifecycle.TransitionCallbackReturn") is not None
    assert API.lookup("rclpy.parameter.parameter_dict_from_yaml_file") is None
    assert API.lookup("launch.substitutions.EqualsSubstitution") is None  # Iron's
    assert API.lookup("rclpy.event_handler") is None  # Iron renamed rclpy.qos_event to it


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_every_rclpy_and_launch_use_in_the_package_exists_in(distro):
    api = API if distro == "humble" else HumbleAPI(MANIFEST.with_name(f"{distro}_api.json"))
    assert {source["ref"] for source in api.generated_from.values()} == {distro}
    findings = audit_files(package_sources(), REPO_ROOT, api)
    assert findings.checked > 150  # imports, attributes, keywords: the audit saw the package
    assert not findings.problems, f"not in {distro} (use a feature fallback):\n" + "\n".join(findings.problems)


def test_the_audit_catches_what_humble_lacks():
    bad = textwrap.dedent('''
        import rclpy
        from rclpy.node import Node
        from rclpy.parameter import parameter_dict_from_yaml_file
        from rclpy.event_handler import PublisherEventCallbacks
        from rclpy.qos_overriding_options import QoSOverridingOptions
        from launch.substitutions import EqualsSubstitution
        from launch_ros.actions import Node as RosNode
        try:
            from rclpy.parameter import parameter_dict_from_yaml_file as probed
        except ImportError:
            probed = None

        class Fine(Node):
            def __init__(self):
                super().__init__("n", enable_logger_service=True)
                self.mine = 1
                self.get_logger().info(str(self.mine))
                self.no_such_method()
                self.create_subscription(int, "t", print, 10, no_such_keyword=1)

        rclpy.parameter.parameter_dict_from_yaml_file("x.yaml")
        rclpy.try_shutdown()
        QoSOverridingOptions.with_default_policies()
        QoSOverridingOptions.no_such_classmethod()
        RosNode(package="p", executable="e", sigterm_timeout="30", bogus_keyword=1)
    ''')
    findings = audit_source(bad, "bad.py", API)
    text = "\n".join(findings.problems)
    for expected in ("import parameter_dict_from_yaml_file", "rclpy.event_handler", "EqualsSubstitution",
                     "enable_logger_service", "self.no_such_method", "no_such_keyword",
                     "rclpy.parameter.parameter_dict_from_yaml_file", "no_such_classmethod", "bogus_keyword"):
        assert expected in text, f"{expected!r} not caught:\n{text}"
    assert len(findings.problems) == 9, text
    assert findings.probes == ["bad.py:10: from rclpy.parameter import parameter_dict_from_yaml_file: not in Humble"]
