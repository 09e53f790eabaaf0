"""Training throughput (tokens/s) and peak memory: the paper's configuration and a tiny one, eager vs torch.compile.

One training step = forward, next-token cross entropy with Deng's masking, backward, gradient clipping at 1.0 and an
AdamW step, on a fixed pre-tokenised batch of k x k multiplication sequences (no-CoT layout, or the full-CoT layout
ICoT starts from). Every (config, mode) pair runs in a fresh subprocess, so peak memory is per run: on CUDA
`torch.cuda.max_memory_allocated`, on the CPU the growth of the process's peak RSS (`resource.getrusage`) over its
RSS after imports. Each run gets a fresh Inductor cache (`--keep-compile-cache` reuses it), so the compile
row's warm-up shows the whole compilation. Tokens counted: batch x sequence length (every position is computed).
`torch.compile` failures (no C++ compiler, unsupported backend, ...) are caught and reported as the row's error.

    python packages/mult-probe/benchmarks/bench_throughput.py --device cpu --steps 3 --json out.json
    python packages/mult-probe/benchmarks/bench_throughput.py --device cuda --batch-size 32 --steps 200
    python packages/mult-probe/benchmarks/bench_throughput.py --device cpu --paired --block 5 --pairs 6

`--paired` times eager and compiled training in one process, alternating blocks of steps, so that on a shared
machine both modes run under the same load; it reports the speed-up (median and range over the block pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc; falls back to the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `spec["steps"]` training steps of one (config, mode) pair after `spec["warmup"]` untimed ones."""
    import torch
    from torch.nn import functional as F

    from mult_probe.data import cot_length, encode_nocot, generate_operands
    from mult_probe.icot import encode_cot
    from mult_probe.model import ModelConfig, Transformer
    from repro_core.device import pick_device

    torch.set_num_threads(spec["threads"])
    device = pick_device(None if spec["device"] == "auto" else spec["device"])
    k = spec["k"]
    n_ctx = 2 * (2 * k) + 5 + cot_length(k)
    cfg = ModelConfig.preset(spec["config"], n_ctx=n_ctx)
    pairs = generate_operands(k, n=spec["batch_size"], seed=0)
    batch = encode_cot(pairs, k) if spec["layout"] == "cot" else encode_nocot(pairs, k)
    tokens = torch.as_tensor(batch.input_ids, device=device)
    labels = torch.as_tensor(batch.labels, device=device)
    base_rss = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    forward = model
    row: dict[str, Any] = {
        **{key: spec[key] for key in ("config", "mode", "batch_size", "layout", "k")},
        "device": str(device),
        "seq_len": int(tokens.shape[1]),
        "parameters": model.n_parameters(),
        "torch": torch.__version__,
    }
    if spec["mode"] == "compile":
        forward = torch.compile(model)

    def step() -> float:
        logits = forward(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    try:
        start = time.perf_counter()
        for _ in range(spec["warmup"]):
            step()
        sync()
        row["warmup_s"] = time.perf_counter() - start  # includes compilation for mode "compile"
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            loss = step()
        sync()
        elapsed = time.perf_counter() - start
    except Exception as exc:  # torch.compile raises many types (BackendCompilerFailed, InductorError, ...)
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
        return row
    row.update(
        steps=spec["steps"],
        seconds=elapsed,
        step_ms=1000 * elapsed / spec["steps"],
        tokens_per_s=spec["steps"] * tokens.numel() / elapsed,
        final_loss=loss,
    )
    if device.type == "cuda":
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["memory_kind"] = "torch.cuda.max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        row["peak_memory_mb"] = max(0, peak - base_rss) / 2**20
        row["memory_kind"] = "peak RSS growth over post-import RSS"
    return row


def _paired_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Eager and compiled training of the same model in one process, timed in alternating blocks of steps.

    On a shared machine the load drifts between two separate runs, so their ratio measures the neighbours as much
    as the compiler; alternating short blocks puts both modes under the same load, and the per-pair ratios show
    how much the load still moved within a pair.
    """
    import statistics

    import torch
    from torch.nn import functional as F

    from mult_probe.data import cot_length, encode_nocot, generate_operands
    from mult_probe.icot import encode_cot
    from mult_probe.model import ModelConfig, Transformer
    from repro_core.device import pick_device

    torch.set_num_threads(spec["threads"])
    device = pick_device(None if spec["device"] == "auto" else spec["device"])
    k = spec["k"]
    cfg = ModelConfig.preset(spec["config"], n_ctx=2 * (2 * k) + 5 + cot_length(k))
    pairs = generate_operands(k, n=spec["batch_size"], seed=0)
    batch = encode_cot(pairs, k) if spec["layout"] == "cot" else encode_nocot(pairs, k)
    tokens = torch.as_tensor(batch.input_ids, device=device)
    labels = torch.as_tensor(batch.labels, device=device)
    runs = {}
    for mode in ("eager", "compile"):
        model = Transformer(cfg, generator=torch.Generator().manual_seed(0)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        runs[mode] = (model, torch.compile(model) if mode == "compile" else model, optimizer)

    def step(mode: str) -> None:
        model, forward, optimizer = runs[mode]
        loss = F.cross_entropy(forward(tokens).flatten(0, 1), labels.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    row: dict[str, Any] = {
        **{key: spec[key] for key in ("config", "batch_size", "layout", "k", "block", "pairs")},
        "mode": "paired",
        "device": str(device),
        "seq_len": int(tokens.shape[1]),
        "parameters": runs["eager"][0].n_parameters(),
        "torch": torch.__version__,
    }
    try:
        for mode in ("eager", "compile"):
            start = time.perf_counter()
            for _ in range(spec["warmup"]):
                step(mode)
            row[f"{mode}_warmup_s"] = time.perf_counter() - start
        blocks: dict[str, list[float]] = {"eager": [], "compile": []}
        for index in range(spec["pairs"]):
            order = ("eager", "compile") if index % 2 == 0 else ("compile", "eager")  # no mode always goes first
            for mode in order:
                start = time.perf_counter()
                for _ in range(spec["block"]):
                    step(mode)
                blocks[mode].append(1000 * (time.perf_counter() - start) / spec["block"])
    except Exception as exc:  # torch.compile raises many types
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
        return row
    ratios = [e / c for e, c in zip(blocks["eager"], blocks["compile"], strict=True)]
    row.update(
        eager_step_ms=statistics.median(blocks["eager"]),
        compile_step_ms=statistics.median(blocks["compile"]),
        speedup_median=statistics.median(ratios),
        speedup_min=min(ratios),
        speedup_max=max(ratios),
        blocks_ms=blocks,
    )
    return row


def _run_isolated(spec: dict[str, Any], timeout: float, *, keep_cache: bool) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; a fresh Inductor cache unless `keep_cache` (cold compile times)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    if spec.get("mode") == "paired":
        cmd[2] = "--paired-worker"
    env = dict(os.environ)
    cache = None if keep_cache else tempfile.mkdtemp(prefix="mult-probe-inductor-")
    if cache is not None:
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:g} s"}
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": f"worker exited {proc.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def _paired_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| config | params | device | eager step (ms) | compiled step (ms) | speed-up, median (min-max of pairs) "
        "| warm-up eager / compile (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['config']} | | {r.get('device', '')} | failed: {r['error']} | | | |")
            continue
        out.append(
            f"| {r['config']} | {r['parameters'] / 1e6:.2f}M | {r['device']} | {r['eager_step_ms']:.1f} | "
            f"{r['compile_step_ms']:.1f} | {r['speedup_median']:.2f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
            f" | {r['eager_warmup_s']:.1f} / {r['compile_warmup_s']:.1f} |"
        )
    return "\n".join(out)


def _table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| config | params | mode | device | batch x seq | step (ms) | tokens/s | peak memory (MB) | warm-up (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = f"{r['batch_size']} x {r.get('seq_len', '?')}"
        if "error" in r:
            out.append(
                f"| {r['config']} | {r.get('parameters', '')} | {r['mode']} | {r.get('device', '')} | {shape} | "
                f"failed: {r['error']} | | | |"
            )
            continue
        out.append(
            f"| {r['config']} | {r['parameters'] / 1e6:.2f}M | {r['mode']} | {r['device']} | {shape} | "
            f"{r['step_ms']:.1f} | {r['tokens_per_s']:,.0f} | {r['peak_memory_mb']:.0f} | {r['warmup_s']:.1f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper"], help="model presets (default: tiny paper)")
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--k", type=int, default=4, help="k x k multiplication (default: 4)")
    parser.add_argument("--layout", choices=["nocot", "cot"], default="nocot", help="sequence layout (default: nocot)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per step (default: 32, the paper's)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default: 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, compilation included (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per (config, mode) run (default: 900)")
    parser.add_argument("--keep-compile-cache", action="store_true", help="reuse Inductor's cache (warm compiles)")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="eager and compile in one process, alternating blocks of --block steps --pairs times (speed-up only)",
    )
    parser.add_argument("--block", type=int, default=5, help="--paired: steps per timed block (default: 5)")
    parser.add_argument("--pairs", type=int, default=6, help="--paired: eager/compile block pairs (default: 6)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--paired-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    if args.paired_worker is not None:
        print(json.dumps(_paired_worker(json.loads(args.paired_worker))))
        return
    if args.paired:
        paired = []
        for config in args.configs:
            spec = {
                "config": config,
                "mode": "paired",
                "device": args.device,
                "k": args.k,
                "layout": args.layout,
                "batch_size": args.batch_size,
                "warmup": args.warmup,
                "threads": args.threads,
                "block": args.block,
                "pairs": args.pairs,
            }
            paired.append(_run_isolated(spec, args.timeout, keep_cache=args.keep_compile_cache))
            print(_paired_table(paired[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        print(_paired_table(paired))
        _write_json(args.json, paired)
        return
    rows = []
    for config in args.configs:
        for mode in args.modes:
            spec = {
                "config": config,
                "mode": mode,
                "device": args.device,
                "k": args.k,
                "layout": args.layout,
                "batch_size": args.batch_size,
                "steps": args.steps,
                "warmup": args.warmup,
                "threads": args.threads,
            }
            rows.append(_run_isolated(spec, args.timeout, keep_cache=args.keep_compile_cache))
            print(_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(_table(rows))
    _write_json(args.json, rows)


def _write_json(path: str | None, rows: list[dict[str, Any]]) -> None:
    """The measured rows as JSON at `path` (`--json`), if one was given."""
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
