"""Design counts of a run (spec 6): rows, workers, statements, items per HIT, judgments per statement, HIT layout.

These are the numbers a loader must reproduce exactly on the released IPM2021 file; computing them from the tables
(never storing them) makes them a check of the loader and of the canonical filter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from truth_crowd.io import CrowdData

__all__ = ["design_counts", "judgments_per_statement"]


def judgments_per_statement(judgments: pd.DataFrame) -> dict[int, int]:
    """How many statements received each number of judgments, `{n_judgments: n_statements}`, gold items excluded."""
    real = judgments[~judgments["statement_id"].isin(["HIGH", "LOW"]) & ~judgments["is_gold"].astype(bool)]
    counts = real.groupby("statement_id", observed=True).size().value_counts()
    return {int(k): int(v) for k, v in sorted(counts.items())}


def design_counts(data: CrowdData) -> dict[str, Any]:
    """The design counts of spec 6 for a loaded (or simulated) run; `canonical_*` entries after `data.real()`."""
    j = data.judgments
    real = data.real().judgments
    per_worker = j.groupby("worker_id", sort=False).size()
    gold = j["is_gold"].astype(bool)
    not_gold_name = ~gold & ~j["statement_id"].isin(["HIGH", "LOW"])
    statements = data.statements
    real_statements = statements[statements["dataset"].isin(["politifact", "abc"])]
    counts: dict[str, Any] = {
        "rows": len(j),
        "source_columns": data.source_columns,
        "workers": int(j["worker_id"].nunique()),
        "statements": len(real_statements),
        "statements_by_dataset": {str(k): int(v) for k, v in real_statements["dataset"].value_counts().items() if v},
        "items_per_hit": int(per_worker.mode().iloc[0]) if len(per_worker) else 0,
        "judgments_real": int(not_gold_name.sum()),
        "judgments_gold": int(gold.sum()),
        "canonical_rows": len(real),
        "judgments_per_statement": judgments_per_statement(j),
        "canonical_judgments_per_statement": judgments_per_statement(real),
        "values_per_judgment": len(data.items),
        "values_real": int(not_gold_name.sum()) * len(data.items),
    }
    abc = j[(j["dataset"] == "abc").to_numpy()]
    if len(abc) and "party" in statements.columns:
        party = abc["statement_id"].map(statements["party"])
        table = pd.crosstab(abc["worker_id"], party)
        composition = table.apply(lambda r: " + ".join(f"{int(r[c])} {c}" for c in table.columns), axis=1)
        counts["hit_composition_abc"] = {str(k): int(v) for k, v in composition.value_counts().items()}
        n_abc = abc.groupby("worker_id").size()
        first = abc.groupby("worker_id")["position"].max() < n_abc
        last = abc.groupby("worker_id")["position"].min() >= per_worker.reindex(n_abc.index) - n_abc
        counts["abc_block_first"] = int(first.sum())
        counts["abc_block_last"] = int(last.sum())
    if "n_judgments" in statements.columns and len(real):
        counts["mean_judgments_per_statement"] = float(
            np.mean(list(real.groupby("statement_id", observed=True).size()))
        )
    return counts
