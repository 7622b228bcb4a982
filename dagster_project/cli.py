"""The `crm-warehouse` command.

Each sub-command lives in its own module under `dagster_project/commands/` and is imported only
when it is called, so `crm-warehouse --help` stays fast and one command's heavy imports (Dagster,
dbt, scikit-learn) never slow down another.
"""

from __future__ import annotations

import importlib
import logging

import click

# command name -> "module:attribute" under dagster_project.commands
COMMANDS: dict[str, tuple[str, str]] = {
    "demo-data": ("demo_data:demo_data", "Generate realistic demo extracts (and their ground truth)."),
    "run": ("run:run", "Run the nightly job once, in this process, with a progress display."),
    "bench": ("bench:bench", "Benchmark the pipeline on generated data; prints a table and JSON."),
    "clv": ("clv:clv", "Customer lifetime value tools (BG/NBD + Gamma-Gamma backtest)."),
    "churn": ("churn:churn", "Churn model tools (evaluate on any labelled table)."),
    "sql": ("sql:sql", "Query the published marts read-only."),
    "docs": ("docs:docs", "Open the dbt docs site of the last successful run."),
    "serve": ("serve:serve", "Run the retention team portal."),
    "users": ("users:users", "Manage portal users."),
    "publish": ("publish:publish", "Publish the marts for analysts by hand."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"dagster_project.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dagster_project.commands.{module_name}":
                return None  # command not built yet
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Retention-analytics warehouse: extracts -> ODS -> marts -> scores -> target lists."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    main()
