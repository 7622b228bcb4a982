"""Demo data: a deterministic simulation of a retail bank's customers that writes realistic daily
CRM extracts (customers, transactions, calls, complaints) in the canonical formats of
`extracts.spec`, together with the ground truth of the churn process it planted.

Pure Python + numpy + pyarrow; nothing here imports Dagster.

    from dagster_project.demo import GeneratorConfig, generate
    summary = generate(GeneratorConfig(out_dir=Path("data/inbox"), truth_dir=Path("data/ground_truth")))
"""

from dagster_project.demo.config import (
    DEFAULT_END_DATE,
    GenerationSummary,
    GeneratorConfig,
)
from dagster_project.demo.generator import generate

__all__ = ["DEFAULT_END_DATE", "GenerationSummary", "GeneratorConfig", "generate"]
