#!/usr/bin/python3
"""Writes deploy/k8s/configmap-agents.yaml from config/agents/*.json (python3-yaml).

Run from anywhere after editing an agent; tests/integration/test_deploy.py fails while
the ConfigMap and config/agents differ.
"""
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "deploy" / "k8s" / "configmap-agents.yaml"
HEADER = """\
# The agents (config/agents/*.json), mounted at AGENTS_DIR (/etc/vap/agents) in the
# gateway and voice pods. Generated; tests/integration/test_deploy.py checks that it
# matches config/agents. Regenerate after editing an agent:
#   deploy/k8s/gen-agents-configmap.py
---
"""


class Literal(str):
    pass


def literal(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


def main():
    yaml.add_representer(Literal, literal)
    agents = sorted((ROOT / "config" / "agents").glob("*.json"))
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "vap-agents", "labels": {"app.kubernetes.io/name": "vap"}},
        "data": {p.name: Literal(p.read_text(encoding="utf-8")) for p in agents},
    }
    body = yaml.dump(doc, sort_keys=False, width=4096, allow_unicode=True)
    OUT.write_text(HEADER + body, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(agents)} agents)")


if __name__ == "__main__":
    main()
