"""The quick reproduction that `repro reproduce` runs for truth-crowd (entry point `repro.reproductions`).

Package skeleton: the paper's implementation lands with issue #5. Until then the reproduction reports
the headline claim it will check, with the paper's number, as *pending*: an honest row, not a fabricated one.
"""

from __future__ import annotations

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["quick"]


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Check the paper's headline claims on the embedded default data (nothing is implemented yet)."""
    return [
        ClaimResult.pending(
            'judgments on real statements after the canonical quality filter',
            metric='rows',
            paper_value=1799,
            note="not implemented yet: package skeleton (issue #5); paper value from released data (spec 6)",
        )
    ]
