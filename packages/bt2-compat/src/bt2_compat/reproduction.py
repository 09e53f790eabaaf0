"""The quick reproduction that `repro reproduce` runs for bt2-compat (entry point `repro.reproductions`).

Package skeleton: the paper's implementation lands with issue #6. Until then the reproduction reports
the headline claim it will check, with the paper's number, as *pending*: an honest row, not a fabricated one.
"""

from __future__ import annotations

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["quick"]


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Check the paper's headline claims on the embedded default data (nothing is implemented yet)."""
    return [
        ClaimResult.pending(
            'BT^2 new-to-old retrieval on CIFAR-100 (50 -> 100 classes)',
            metric='CMC top-1 (%)',
            paper_value=38.7,
            note="not implemented yet: package skeleton (issue #6); paper value from authors' README",
        )
    ]
