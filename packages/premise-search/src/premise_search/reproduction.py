"""The quick reproduction that `repro reproduce` runs for premise-search (entry point `repro.reproductions`).

Package skeleton: the paper's implementation lands with issue #7. Until then the reproduction reports
the headline claim it will check, with the paper's number, as *pending*: an honest row, not a fabricated one.
"""

from __future__ import annotations

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["quick"]


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Check the paper's headline claims on the embedded default data (nothing is implemented yet)."""
    return [
        ClaimResult.pending(
            "standard-mode retrieval quality on the paper's benchmark",
            metric='nDCG@10',
            paper_value=0.62,
            note="not implemented yet: package skeleton (issue #7); paper value from paper (full Mathlib corpus, GPU models)",
        )
    ]
