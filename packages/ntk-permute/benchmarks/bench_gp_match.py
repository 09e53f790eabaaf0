"""The finite-width acceptance statistics at full size (spec 8.8, 8.9): k = 8, n = 1024, M = 2048 (the tests use
M = 256 and honest tolerances).

Per-model m = 2 on-bit mean, off-bit mean and variance of a trained ensemble against the NNGP-GP (standard
parametrisation, target 5%) and the NTK-GP (NTK parametrisation, target 2% on the on-bit mean and the variance),
with standard errors over members.

    python packages/ntk-permute/benchmarks/bench_gp_match.py [--members 2048] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ntk_permute.closed_form import m_form
from ntk_permute.evaluation import level_statistics
from ntk_permute.training import TrainConfig, train_ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2048)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    perm = np.array([3, 0, 6, 1, 7, 2, 5, 4])
    for parametrization, kind in (("standard", "nngp"), ("ntk", "ntk")):
        config = TrainConfig(k=8, width=args.width, n_members=args.members, parametrization=parametrization, seed=7)
        stats = level_statistics(train_ensemble(config, perm), 2)
        theory = m_form(8, 2, kind=kind)
        errors = stats.relative_errors(float(theory.mu_on[0]), float(theory.mu_off[0]), float(theory.variance[0]))
        rows.append(
            {
                "parametrization": parametrization,
                "gp": kind,
                "M": args.members,
                "ours": [stats.mu_on, stats.mu_off, stats.variance],
                "se": [stats.se_on, stats.se_off, stats.se_variance],
                "theory": [float(theory.mu_on[0]), float(theory.mu_off[0]), float(theory.variance[0])],
                "relative_error": errors,
            }
        )
    print(json.dumps(rows, indent=2) if args.json else "\n".join(str(r) for r in rows))


if __name__ == "__main__":
    main()
