#!/usr/bin/env python3
"""Write test/data/fastdds_2.6_profiles_schema.json: what Humble's Fast DDS (2.6, rosdistro's humble
release) accepts in an XML profiles file, from its documented schema (resources/xsd/fastRTPS_profiles.xsd)
and the string constants of its XML parser (src/cpp/rtps/xmlparser/XMLParserCommon.cpp), read from a
git directory of github.com/eProsima/Fast-DDS. Run once; test/test_fastdds_profile.py checks
config/fastdds_large_data.xml against the result.

    python3 tools/fastdds_profile_schema.py --fastdds FAST_DDS_GIT [--ref v2.6.12] [--out ...]

Per complex type: its child elements (name -> type; an anonymous type is named ``Parent/child``) and
attributes (name -> type, required); per simple type: its XSD base and enumeration. ``parser`` holds
where the parser reads other names than the XSD documents (2.6's XSD gives ``userTransports`` ``<id>``
children; its parser, ``XMLParser::getXMLTransports``, reads ``<transport_id>``, which later XSDs say).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict

XS = "{http://www.w3.org/2001/XMLSchema}"
XSD_PATH = "resources/xsd/fastRTPS_profiles.xsd"
CONSTANTS_PATH = "src/cpp/rtps/xmlparser/XMLParserCommon.cpp"
REPO_ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def local(type_name: str) -> str:
    return type_name.partition(":")[2] if ":" in type_name and not type_name.startswith("xs:") else type_name


class SchemaReader:
    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.complex: Dict[str, dict] = {}
        self.simple: Dict[str, dict] = {}

    def read(self) -> dict:
        for node in self.root:
            name = node.get("name")
            if node.tag == f"{XS}complexType":
                self.read_complex(name, node)
            elif node.tag == f"{XS}simpleType":
                self.read_simple(name, node)
        elements = {}
        for node in self.root.findall(f"{XS}element"):
            elements[node.get("name")] = self.element_type(node.get("name"), node)
        return {"elements": elements, "complex_types": self.complex, "simple_types": self.simple}

    def element_type(self, owner: str, element: ET.Element) -> str:
        if element.get("type"):
            return local(element.get("type"))
        inline = element.find(f"{XS}complexType")
        if inline is not None:
            self.read_complex(owner, inline)
            return owner
        inline = element.find(f"{XS}simpleType")
        if inline is not None:
            self.read_simple(owner, inline)
            return owner
        return "xs:anyType"

    def read_complex(self, name: str, node: ET.Element) -> None:
        children, attributes = {}, {}
        for sub in node.iter():
            if sub.tag == f"{XS}element" and self.owner_of(node, sub) is node:
                children[sub.get("name")] = self.element_type(f"{name}/{sub.get('name')}", sub)
            elif sub.tag == f"{XS}attribute" and self.owner_of(node, sub) is node:
                attributes[sub.get("name")] = {"type": local(sub.get("type", "xs:string")),
                                               "required": sub.get("use") == "required"}
        simple_content = node.find(f"{XS}simpleContent/{XS}extension")
        entry = {"children": children, "attributes": attributes}
        if simple_content is not None:
            entry["text"] = local(simple_content.get("base"))
        self.complex[name] = entry

    def owner_of(self, complex_node: ET.Element, target: ET.Element) -> ET.Element:
        """The nearest complexType enclosing ``target`` (an element of an inner type is not ours)."""
        def walk(node, owner):
            for child in node:
                if child is target:
                    return owner
                found = walk(child, child if child.tag == f"{XS}complexType" else owner)
                if found is not None:
                    return found
            return None
        return walk(complex_node, complex_node)

    def read_simple(self, name: str, node: ET.Element) -> None:
        restriction = node.find(f"{XS}restriction")
        base = local(restriction.get("base")) if restriction is not None else "xs:string"
        values = [e.get("value") for e in restriction.findall(f"{XS}enumeration")] if restriction is not None else []
        self.simple[name] = {"base": base, "enumeration": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fastdds", type=Path, required=True, help="git directory of github.com/eProsima/Fast-DDS")
    parser.add_argument("--ref", default="v2.6.12", help="tag or branch (default: v2.6.12, rosdistro humble's release)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test" / "data" / "fastdds_2.6_profiles_schema.json")
    args = parser.parse_args()
    commit = git(args.fastdds, "rev-parse", f"{args.ref}^{{commit}}").strip()
    schema = SchemaReader(ET.fromstring(git(args.fastdds, "show", f"{commit}:{XSD_PATH}"))).read()
    constants = dict(re.findall(r'const char\*\s+(\w+)\s*=\s*"([^"]*)"',
                                git(args.fastdds, "show", f"{commit}:{CONSTANTS_PATH}")))
    out = {
        "about": "Fast DDS 2.6 XML profiles schema (the XSD facts a profile is checked against), generated by "
                 "tools/fastdds_profile_schema.py; checked by test/test_fastdds_profile.py",
        "generated_from": {"repository": "github.com/eProsima/Fast-DDS", "ref": args.ref, "commit": commit,
                           "files": [XSD_PATH, CONSTANTS_PATH]},
        "parser": {
            "root_elements": [constants["ROOT"], constants["PROFILES"]],
            "transport_types": [constants[k] for k in ("UDPv4", "UDPv6", "TCPv4", "TCPv6", "SHM")],
            # XMLElementParser.cpp, XMLParser::getXMLTransports: FirstChildElement(TRANSPORT_ID)
            "userTransports_child": constants["TRANSPORT_ID"],
        },
        **schema,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{args.out}: {len(schema['complex_types'])} complex types, {len(schema['simple_types'])} simple types")


if __name__ == "__main__":
    main()
