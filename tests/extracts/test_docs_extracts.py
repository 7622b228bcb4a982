"""docs/extracts.md documents every canonical column and every allowed value of the spec."""

from pathlib import Path

from dagster_project.extracts.spec import SPECS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "extracts.md").read_text(encoding="utf-8")


def test_every_column_and_allowed_value_is_documented():
    missing = []
    for kind, spec in SPECS.items():
        section = DOC.split(f"### {kind}\n", 1)[-1].split("\n### ", 1)[0]
        for column in spec.columns:
            if f"| `{column.name}` |" not in section:
                missing.append(f"{kind}.{column.name}")
            for value in column.allowed or ():
                if f"`{value}`" not in section:
                    missing.append(f"{kind}.{column.name}={value}")
    assert missing == []
