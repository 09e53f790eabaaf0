"""Does the running-sum auxiliary loss beat standard fine-tuning on the middle digits, with the same budget?

Trains a tiny model (d64 L2 H4) on k x k multiplication without CoT, once with SFT and once per auxiliary-loss
setting, for the same steps, batch and seed; prints per-position teacher-forced accuracy and loss on 1,000 held-out
pairs, greedy exact match, the mean middle-digit accuracy (c1 .. c_{2k-2}) and the validation MAE of ridge probes
for c_hat_t at blocks.1.hook_resid_mid (2,000 pairs). Results in benchmarks/README.md.

    python packages/mult-probe/benchmarks/aux_vs_sft.py --k 3 --steps 1500 --seeds 0 1 --lambdas 1 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from mult_probe.data import generate_operands
from mult_probe.model import ModelConfig
from mult_probe.probes import fit_running_sum_probes
from mult_probe.train import TrainConfig, train
from repro_core.seeding import derive_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--target-scale", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        base = TrainConfig(
            k=args.k,
            model=ModelConfig.tiny(d_model=args.d_model, n_ctx=32),
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=seed,
            aux_heads=tuple(args.heads),
            aux_target_scale=args.target_scale,
        )
        probe_pairs = generate_operands(args.k, n=2000, seed=derive_seed(seed, "probe"))
        runs = [("sft", base)] + [
            (f"aux lambda={lam:g}", replace(base, method="aux", aux_lambda=lam)) for lam in args.lambdas
        ]
        for name, config in runs:
            start = time.perf_counter()
            run = train(config)
            final = run.final
            probe = fit_running_sum_probes(run.model, probe_pairs, args.k, hooks=["blocks.1.hook_resid_mid"])
            forced = final.teacher_forced_digit_accuracy
            row = {
                "seed": seed,
                "run": name,
                "seconds": round(time.perf_counter() - start, 1),
                "exact_match": final.exact_match,
                "teacher_forced_accuracy": [round(x, 3) for x in forced],
                "position_loss": [round(x, 3) for x in final.position_loss],
                "middle_accuracy": round(float(np.mean(forced[1:-1])), 3),
                "probe_mae_resid_mid_1": [round(float(x), 2) for x in probe.mae[0]],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
