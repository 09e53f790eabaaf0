"""GPU check (at most ~8 minutes on one H200): SFT against the running-sum auxiliary loss at the paper's 4x4 setting.

Both runs use the authors' SFT/aux architecture (`paper_sft`: width 768, 2 layers, 4 heads, no biases, std-1
embeddings, untied), batch 32, AdamW lr 5e-5 (spec 4.3 / 9: probably the authors' SFT/aux settings), fresh seeded
4x4 pairs every step, the same seed and the same number of steps. The step count is set from a short timing run of
each method so that both fit `--budget-s` (capped by `--max-steps`), unless `--steps` is given.

Reported per answer position c0..c7: teacher-forced cross entropy on 1,000 held-out pairs at the end, the mean
training-batch loss over the last 500 steps, and a coarse curve; against the authors' logs (spec 6.2): between 20k
and 50k steps the aux model has c2 0.34-0.62 and c3 0.64-1.37 while SFT has c2 1.5-2.3 and c3 ~2.3; at 50k steps aux
c3 0.64 against SFT 2.33. The aux loss weight, heads and target scale are not published (defaults here: lambda 10,
heads 0 and 1 of layer 2, target c_hat / 100, the settings that worked at CPU scale; see benchmarks/README.md).

    python packages/mult-probe/benchmarks/gpu_4x4_sft_vs_aux.py --out $OUT --device cuda
    python packages/mult-probe/benchmarks/gpu_4x4_sft_vs_aux.py --out /tmp/smoke --smoke   # CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

#: The authors' logs (ckpts/{vanilla_ft,aux_head}/grad_probe_log.csv, spec 6.2), c0..c7 order.
REFERENCE = {
    "aux_c3_at_50k": 0.64,
    "sft_c3_at_50k": 2.33,
    "range_20k_50k": {"aux": {"c2": [0.34, 0.62], "c3": [0.64, 1.37]}, "sft": {"c2": [1.5, 2.3], "c3": [2.3, 2.3]}},
    "sft_end_624500": [0.0, 3.5e-6, 4.4e-4, 2.30, 2.30, 2.22, 1.56, 5.6e-5],
    "aux_end_1107500": [0.0, 5.6e-7, 1.8e-6, 6.9e-6, 1.6e-4, 6.4e-5, 1.4e-5, 1.1e-5],
    "chance": 2.302585,
}

logger = logging.getLogger("gpu_4x4_sft_vs_aux")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory for result.json")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (default: auto)")
    parser.add_argument("--budget-s", type=float, default=360.0, help="training seconds for both runs (default: 360)")
    parser.add_argument("--max-steps", type=int, default=50_000, help="cap on the step count (default: 50000)")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count (skips the timing run)")
    parser.add_argument("--calibration-steps", type=int, default=150, help="timing run per method (default: 150)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--aux-lambda", type=float, default=10.0)
    parser.add_argument("--aux-heads", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--aux-target-scale", type=float, default=100.0)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny 2x2 model on the CPU for a few steps (tests)")
    return parser.parse_args(argv)


def _run(config: Any, device: Any, window: int, curve_every: int) -> dict[str, Any]:
    """Train one config; keep the last `window` batch position losses and a curve of window means."""
    import numpy as np

    from mult_probe.train import train

    recent: deque[list[float]] = deque(maxlen=window)
    curve: list[dict[str, Any]] = []
    times: list[float] = []

    def on_step(step: int, logs: dict[str, Any]) -> None:
        recent.append(logs["position_loss"])
        times.append(time.perf_counter())
        if step % curve_every == 0 or step == config.steps:
            curve.append({"step": step, "position_loss": np.mean(recent, axis=0).round(5).tolist()})

    start = time.perf_counter()
    result = train(config, device=device, on_step=on_step)
    wall = time.perf_counter() - start
    steady = times[len(times) // 5 :]  # skip warm-up (allocator, kernels) when timing a step
    step_s = (steady[-1] - steady[0]) / max(1, len(steady) - 1) if len(steady) > 1 else wall / config.steps
    final = result.final
    return {
        "method": config.method,
        "steps": config.steps,
        "wall_s": wall,
        "step_ms": 1000 * step_s,
        "eval_position_loss": final.position_loss,
        "train_position_loss_last_window": np.mean(recent, axis=0).tolist(),
        "teacher_forced_digit_accuracy": final.teacher_forced_digit_accuracy,
        "digit_accuracy": final.digit_accuracy,
        "exact_match": final.exact_match,
        "curve": curve,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import torch

    from mult_probe.model import ModelConfig
    from mult_probe.train import TrainConfig
    from repro_core.device import pick_device

    if args.smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)
        k, model, window, curve_every = 2, ModelConfig.tiny(d_model=32, n_ctx=16), 2, 2
        args.eval_size, args.calibration_steps, args.lr = 20, 2, 3e-3
        args.max_steps = min(args.max_steps, 4)
    else:
        device = pick_device(None if args.device == "auto" else args.device)
        k, model, window, curve_every = 4, ModelConfig.paper_sft(n_ctx=32), 500, 1000
    sft = TrainConfig(
        method="sft",
        k=k,
        model=model,
        steps=args.calibration_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        eval_size=args.eval_size,
        aux_heads=tuple(args.aux_heads),
        aux_lambda=args.aux_lambda,
        aux_target_scale=args.aux_target_scale,
    )
    aux = replace(sft, method="aux")
    info: dict[str, Any] = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "smoke": args.smoke,
        "config": {"sft": sft.to_dict(), "aux": aux.to_dict()},
        "parameters": None,
        "reference": REFERENCE,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / "result.json"
    steps = args.steps
    if steps is None:
        timing = {
            name: _run(replace(c, eval_size=min(args.eval_size, 100)), device, window, curve_every)
            for name, c in (("sft", sft), ("aux", aux))
        }
        per_pair = (timing["sft"]["step_ms"] + timing["aux"]["step_ms"]) / 1000
        steps = max(1, min(args.max_steps, int(0.9 * args.budget_s / per_pair)))
        info["calibration"] = {name: {"steps": r["steps"], "step_ms": r["step_ms"]} for name, r in timing.items()}
        logger.info(
            "timing: sft %.2f ms/step, aux %.2f ms/step -> %d steps each",
            timing["sft"]["step_ms"],
            timing["aux"]["step_ms"],
            steps,
        )
    info["steps"] = steps
    runs: dict[str, Any] = {}
    for name, config in (("sft", replace(sft, steps=steps)), ("aux", replace(aux, steps=steps))):
        logger.info("training %s for %d steps on %s", name, steps, device)
        runs[name] = _run(config, device, window, curve_every)
        info["runs"] = runs
        out_file.write_text(json.dumps(info, indent=2))  # partial results survive a timeout
    from mult_probe.model import Transformer

    info["parameters"] = Transformer(model).n_parameters()
    sft_loss, aux_loss = runs["sft"]["eval_position_loss"], runs["aux"]["eval_position_loss"]
    info["summary"] = {
        "steps": steps,
        "eval_loss_c2": {"sft": sft_loss[2], "aux": aux_loss[2]},
        "eval_loss_c3": {"sft": sft_loss[3], "aux": aux_loss[3]},
        "aux_c3_below_sft_c3": aux_loss[3] < sft_loss[3],
        "aux_c3_over_sft_c3": aux_loss[3] / sft_loss[3] if sft_loss[3] > 0 else None,
        "paper_at_50k": {"aux_c3": REFERENCE["aux_c3_at_50k"], "sft_c3": REFERENCE["sft_c3_at_50k"]},
    }
    out_file.write_text(json.dumps(info, indent=2))
    for name in ("sft", "aux"):
        losses = " ".join(f"c{i}={v:.3f}" for i, v in enumerate(runs[name]["eval_position_loss"]))
        logger.info("%s after %d steps (%.1f ms/step): %s", name, steps, runs[name]["step_ms"], losses)
    logger.info("paper at 50k steps: aux c3 0.64, SFT c3 2.33; wrote %s", out_file)
    return info


if __name__ == "__main__":
    main()
