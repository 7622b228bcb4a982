"""The dbt project is built in layers around Python assets; a test must never span two layers.

With `--indirect-selection cautious` a test that reads models of two layers would silently never
run, and with eager selection it would run before the later layer is rebuilt. Either way it is a
defect, so this test fails when one appears.
"""

from __future__ import annotations

import json

from dagster_project.defs.dbt.project import ensure_manifest

LATER = {"ml": 1, "retention": 2}


def _layers(manifest: dict) -> dict[str, int]:
    layer: dict[str, int] = {}
    nodes = {**manifest["nodes"], **manifest["sources"]}

    def of(uid: str) -> int:
        if uid in layer:
            return layer[uid]
        node = nodes[uid]
        if node["resource_type"] == "source":
            value = LATER.get(node["source_name"], 0)
        else:
            value = max([of(p) for p in node.get("depends_on", {}).get("nodes", []) if p in nodes] or [0])
        layer[uid] = value
        return value

    for uid, node in manifest["nodes"].items():
        if node["resource_type"] in ("model", "snapshot"):
            of(uid)
    return layer


def test_no_dbt_test_reads_models_of_two_layers():
    manifest = json.loads(ensure_manifest().read_text())
    layer = _layers(manifest)
    spanning = []
    for _uid, node in manifest["nodes"].items():
        if node["resource_type"] != "test":
            continue
        parents = [p for p in node["depends_on"]["nodes"] if p in layer]
        if len({layer[p] for p in parents}) > 1:
            spanning.append((node["name"], {p.split(".")[-1]: layer[p] for p in parents}))
    assert spanning == []
