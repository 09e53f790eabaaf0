"""The quick reproduction that `repro reproduce` runs for ntk-permute (entry point `repro.reproductions`).

Package skeleton: the paper's implementation lands with issue #3. Until then the reproduction reports
the headline claim it will check, with the paper's number, as *pending*: an honest row, not a fabricated one.
"""

from __future__ import annotations

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["quick"]


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Check the paper's headline claims on the embedded default data (nothing is implemented yet)."""
    return [
        ClaimResult.pending(
            'NTK-GP mean of an on-bit at k = 8, input (1,1,0,...)/sqrt(2)',
            metric='mu_on',
            paper_value=0.5639386392,
            note="not implemented yet: package skeleton (issue #3); paper value from closed form = neural-tangents 0.6.5 (spec 6.1)",
        )
    ]
