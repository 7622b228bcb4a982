"""Retention target lists: configuration, selection and recommended actions (no Dagster here).

    config.py     retention_teams.yml and retention_actions.yml: load, validate, defaults
    selection.py  eligibility, ranking, routing, control group, capacity, agent assignment
    actions.py    the recommended action of a customer (first matching rule)
    store.py      reading the inputs from and writing the membership to the warehouse (DuckDB)

The Dagster asset (`dagster_project/defs/exports/assets.py`) only wires these together;
docs/retention.md describes the rules.
"""
