"""The quick reproduction that `repro reproduce` runs for mult-probe (entry point `repro.reproductions`).

Package skeleton: the paper's implementation lands with issue #4. Until then the reproduction reports
the headline claim it will check, with the paper's number, as *pending*: an honest row, not a fabricated one.
"""

from __future__ import annotations

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["quick"]


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Check the paper's headline claims on the embedded default data (nothing is implemented yet)."""
    return [
        ClaimResult.pending(
            '2-layer 4-head transformer trained with the running-sum auxiliary loss solves 4x4 multiplication',
            metric='exact match',
            paper_value=0.99,
            note="not implemented yet: package skeleton (issue #4); paper value from paper",
        )
    ]
