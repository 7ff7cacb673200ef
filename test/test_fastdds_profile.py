"""config/fastdds_large_data.xml is a profile Humble's Fast DDS 2.6 reads: every element and attribute
against its documented schema (test/data/fastdds_2.6_profiles_schema.json, extracted from the 2.6
release's fastRTPS_profiles.xsd and parser by tools/fastdds_profile_schema.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

from depth_attn.paths import REPO_ROOT

SCHEMA = json.loads((Path(__file__).resolve().parent / "data" / "fastdds_2.6_profiles_schema.json").read_text())
PROFILE = REPO_ROOT / "config" / "fastdds_large_data.xml"
NAMESPACE = "{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}"
INTEGER_RANGES = {"xs:unsignedInt": (0, 2**32 - 1), "xs:int": (-2**31, 2**31 - 1), "xs:unsignedShort": (0, 2**16 - 1),
                  "xs:short": (-2**15, 2**15 - 1), "xs:unsignedByte": (0, 255), "xs:byte": (-128, 127)}


def value_problem(type_name: str, text: str) -> str:
    """'' when ``text`` is a valid value of the simple type, else why not."""
    simple = SCHEMA["simple_types"].get(type_name, {"base": type_name, "enumeration": []})
    text = text.strip()
    if simple["enumeration"] and text not in simple["enumeration"]:
        return f"{text!r} is not one of {simple['enumeration']}"
    base = simple["base"]
    if base in ("xs:boolean", "boolean"):
        return "" if text in ("true", "false", "1", "0") else f"{text!r} is not a boolean"
    if base in INTEGER_RANGES:
        low, high = INTEGER_RANGES[base]
        return "" if text.lstrip("-").isdigit() and low <= int(text) <= high else f"{text!r} is not a {base}"
    return ""


def check(element: ET.Element, type_name: str, path: str, problems: List[str]) -> None:
    complex_type = SCHEMA["complex_types"].get(type_name)
    if complex_type is None:  # a simple type: a leaf with text
        if len(element):
            problems.append(f"{path}: {type_name} has no child elements")
        why = value_problem(type_name, element.text or "")
        if why:
            problems.append(f"{path}: {why}")
        return
    for name, spec in complex_type["attributes"].items():
        if spec["required"] and name not in element.attrib:
            problems.append(f"{path}: required attribute {name!r} missing")
    for name, value in element.attrib.items():
        if name not in complex_type["attributes"]:
            problems.append(f"{path}: attribute {name!r} is not in {type_name}")
        else:
            why = value_problem(complex_type["attributes"][name]["type"], value)
            if why:
                problems.append(f"{path}@{name}: {why}")
    children = dict(complex_type["children"])
    if path.endswith("/userTransports"):  # the 2.6 parser reads <transport_id>, its XSD says <id>
        children = {SCHEMA["parser"]["userTransports_child"]: "stringType"}
    for child in element:
        name = child.tag.replace(NAMESPACE, "")
        if name not in children:
            problems.append(f"{path}/{name}: not an element of {type_name} (allowed: {sorted(children)})")
            continue
        check(child, children[name], f"{path}/{name}", problems)


def test_the_schema_is_humbles_fast_dds():
    source = SCHEMA["generated_from"]
    assert source["ref"].startswith("v2.6.") and len(source["commit"]) == 40
    assert SCHEMA["parser"]["root_elements"] == ["dds", "profiles"]
    # the discrepancy the check works around, as the 2.6 sources have it
    assert SCHEMA["complex_types"]["stringListType"]["children"] == {"id": "stringType"}
    assert SCHEMA["parser"]["userTransports_child"] == "transport_id"


def test_the_large_data_profile_is_valid_for_fast_dds_2_6():
    root = ET.parse(PROFILE).getroot()
    assert root.tag == f"{NAMESPACE}profiles"
    problems: List[str] = []
    check(root, "profilesType", "profiles", problems)
    assert not problems, "\n".join(problems)
    ids = [t.findtext(f"{NAMESPACE}transport_id") for t in root.iter(f"{NAMESPACE}transport_descriptor")]
    types = [t.findtext(f"{NAMESPACE}type") for t in root.iter(f"{NAMESPACE}transport_descriptor")]
    assert set(types) <= set(SCHEMA["parser"]["transport_types"]) and "SHM" in types
    used = [t.text for t in root.iter(f"{NAMESPACE}userTransports") for t in t]
    assert used and set(used) <= set(ids)  # the parser fails on an id no transport_descriptor declares
    segment = int(next(t for t in root.iter(f"{NAMESPACE}transport_descriptor")
                       if t.findtext(f"{NAMESPACE}type") == "SHM").findtext(f"{NAMESPACE}segment_size"))
    assert segment >= 10 * 1242 * 375 * 3  # ten KITTI rgb8 frames, the profile's stated purpose
    participant = root.find(f"{NAMESPACE}participant")
    assert participant.get("is_default_profile") == "true"  # applies to rmw's participants without naming it


def test_the_check_rejects_what_fast_dds_2_6_does_not_know():
    bad = ET.fromstring(
        f'<profiles xmlns="{NAMESPACE[1:-1]}"><transport_descriptors><transport_descriptor>'
        '<transport_id>x</transport_id><type>SHM</type><segment_size>-5</segment_size><shm_size>1</shm_size>'
        '</transport_descriptor></transport_descriptors>'
        '<participant is_default_profile="maybe"><rtps><userTransports><id>x</id></userTransports>'
        '<useBuiltinTransports>no</useBuiltinTransports></rtps></participant></profiles>')
    problems: List[str] = []
    check(bad, "profilesType", "profiles", problems)
    text = "\n".join(problems)
    for expected in ("segment_size: '-5'", "shm_size: not an element", "'profile_name' missing",
                     "is_default_profile: 'maybe'", "userTransports/id: not an element", "'no' is not a boolean"):
        assert expected in text, f"{expected!r} not in:\n{text}"
