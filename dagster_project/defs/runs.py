"""Run helpers shared by asset checks."""

import dagster as dg


def run_lineage(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """This run's id and those of the runs it re-executes (parent, grandparent, ...).

    A retry "from failure" skips the steps that succeeded, so a check that looks at "what this
    run loaded" must look at the whole lineage or it would check nothing.
    """
    ids = [run.run_id]
    parent_id = run.parent_run_id
    while parent_id and parent_id not in ids:
        ids.append(parent_id)
        parent = instance.get_run_by_id(parent_id)
        parent_id = parent.parent_run_id if parent else None
    return ids
