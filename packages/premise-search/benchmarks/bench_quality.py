"""Retrieval quality of every channel, the hybrid and the reranker on the embedded corpus, plus the weight search.

Rows: BM25, the name channel, the built-in dense channel, the semantic channel (when the index has one), hybrid,
and hybrid + feature rerank. Columns: MathlibQR nDCG@10 / Recall@10 on the *tuning* rows (the 136 rows whose
target is outside the shared-171 fair subset) and on the fair slice (810 rows, the reported numbers), and
MathlibMPR Recall@10(group) / Covered@10 with the English statement as one query.

`--grid` repeats the fusion-weight search that set `LEXICAL_CHANNEL_WEIGHTS` / `SEMANTIC_CHANNEL_WEIGHTS`: every
(rule, weights) point of a small grid is scored on the tuning rows only, and the best by nDCG@10 (then Recall@10)
is printed with its fair-slice and MathlibMPR scores. The fair slice is never used to choose.

    python packages/premise-search/benchmarks/bench_quality.py [--semantic none|auto|minilm|wordllama]
        [--informal none|offline] [--index DIR] [--grid] [--json]

With `--index`, a saved index is loaded (build one with `open_index(DIR, load_default_corpus(),
IndexConfig(semantic="minilm"))`); otherwise the engine is built in memory (MiniLM embeds the 22,936
declarations in about 4 min of CPU time on 2 cores). `--informal` sets `IndexConfig.informal` when building
(default: the package default, `offline`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from premise_search.corpus import load_default_corpus
from premise_search.evaluation import load_mathlib_mpr, load_mathlib_qr, mpr_metrics, qr_metrics
from premise_search.index import load_index
from premise_search.retrieval import INFORMAL_SOURCES, IndexConfig, SearchEngine, rrf_fuse, zscore_fuse


def qr_row(names: Sequence[Sequence[str]], targets: Sequence[str], mask: np.ndarray) -> dict[str, float]:
    scores = qr_metrics(names, targets, ks=(10,))
    return {"nDCG@10": float(scores["nDCG@10"][mask].mean()), "Recall@10": float(scores["Recall@10"][mask].mean())}


def evaluate(engine: SearchEngine, depth: int = 20) -> dict[str, dict[str, Any]]:
    """Every mode's scores on the tuning rows, the fair slice and MathlibMPR."""
    rows = load_mathlib_qr()
    queries, targets = [r.query for r in rows], [r.full_name for r in rows]
    fair = np.array([r.fair for r in rows])
    mpr = load_mathlib_mpr()
    modes: list[tuple[str, str, bool]] = [("bm25", "bm25", False), ("name", "name", False), ("dense", "dense", False)]
    if engine.semantic is not None:
        modes.append(("semantic", "semantic", False))
    modes += [("hybrid", "hybrid", False), ("hybrid+rerank", "hybrid", True)]
    out: dict[str, dict[str, Any]] = {}
    for label, mode, rerank in modes:
        t0 = time.perf_counter()
        ranked = engine.search_batch(queries, depth, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        names = [[h.name for h in r] for r in ranked]
        mpr_ranked = engine.search_batch([q.nl_statement for q in mpr], 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        mpr_scores = mpr_metrics([[h.name for h in r] for r in mpr_ranked], mpr, ks=(10,))
        out[label] = {
            "tune": qr_row(names, targets, ~fair),
            "fair": qr_row(names, targets, fair),
            "mpr": {"Recall@10(group)": mpr_scores["Recall@10(group)"], "Covered@10": mpr_scores["Covered@10"]},
            "seconds": time.perf_counter() - t0,
        }
    return out


def weight_grid(engine: SearchEngine) -> dict[str, Any]:
    """The fusion-weight search on the tuning rows (see the module docstring); returns the best point and its scores."""
    rows = load_mathlib_qr()
    mpr = load_mathlib_mpr()
    queries = [r.query for r in rows] + [q.nl_statement for q in mpr]
    targets = [r.full_name for r in rows]
    fair = np.array([r.fair for r in rows])
    n_qr = len(rows)
    depth = engine.candidates
    channels = {c: engine._channel(c, queries, depth) for c in engine.channels}
    if engine.semantic is not None:
        axes = {"semantic": (0.25, 0.5, 1.0, 1.5, 2.0), "dense": (0.0, 0.25, 0.5), "name": (0.0, 0.1, 0.25)}
    else:
        axes = {"dense": (0.0, 0.25, 0.5, 1.0), "name": (0.0, 0.1, 0.25, 0.5)}
    points = []
    for fusion in ("rrf", "zscore"):
        for values in itertools.product(*axes.values()):
            weights = {"bm25": 1.0, **dict(zip(axes, values, strict=True))}
            used = [c for c in channels if weights.get(c, 0.0) != 0.0]
            tops = []
            for i in range(len(queries)):
                w = [weights[c] for c in used]
                if fusion == "rrf":
                    fused = rrf_fuse([channels[c][i][0] for c in used], k=engine.rrf_k, weights=w)
                else:
                    fused = zscore_fuse([channels[c][i] for c in used], weights=w)
                tops.append([engine.corpus[j].name for j, _ in fused[:20]])
            tune = qr_row(tops[:n_qr], targets, ~fair)
            points.append((tune["nDCG@10"], tune["Recall@10"], fusion, weights, tops))
    points.sort(key=lambda p: (-p[0], -p[1]))
    best = points[0]
    tops = best[4]
    mpr_scores = mpr_metrics(tops[n_qr:], mpr, ks=(10,))
    return {
        "n_points": len(points),
        "fusion": best[2],
        "weights": best[3],
        "tune": {"nDCG@10": best[0], "Recall@10": best[1]},
        "fair": qr_row(tops[:n_qr], targets, fair),
        "mpr": {"Recall@10(group)": mpr_scores["Recall@10(group)"]},
        "runners_up": [{"fusion": p[2], "weights": p[3], "tune_nDCG@10": p[0]} for p in points[1:6]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--semantic", default="none", help="semantic model when building (none|auto|minilm|wordllama)")
    parser.add_argument(
        "--informal", choices=INFORMAL_SOURCES, default=IndexConfig.informal, help="informal text when building"
    )
    parser.add_argument("--index", help="load this saved index instead of building")
    parser.add_argument("--grid", action="store_true", help="also run the fusion-weight search on the tuning rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.index:
        engine = load_index(args.index)
    else:
        engine = SearchEngine.build(load_default_corpus(), IndexConfig(semantic=args.semantic, informal=args.informal))
    result: dict[str, Any] = {
        "semantic": engine.semantic.id if engine.semantic is not None else "none",
        "informal": engine.config.informal,
        "fusion": engine.fusion,
        "weights": engine.channel_weights,
        "engine_s": time.perf_counter() - t0,
        "modes": evaluate(engine),
    }
    if args.grid:
        result["grid"] = weight_grid(engine)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"semantic: {result['semantic']}; informal: {result['informal']}; "
        f"fusion {engine.fusion}, weights {engine.channel_weights}"
    )
    print("| retriever | tune nDCG@10 | tune R@10 | fair nDCG@10 | fair R@10 | MPR R@10(group) % | MPR Covered@10 % |")
    print("|---|---|---|---|---|---|---|")
    for label, row in result["modes"].items():
        t, f, m = row["tune"], row["fair"], row["mpr"]
        print(
            f"| {label} | {t['nDCG@10']:.3f} | {t['Recall@10']:.3f} | {f['nDCG@10']:.3f} | {f['Recall@10']:.3f} "
            f"| {m['Recall@10(group)']:.1f} | {m['Covered@10']:.1f} |"
        )
    if args.grid:
        g = result["grid"]
        print(
            f"grid ({g['n_points']} points, chosen on the tuning rows): {g['fusion']} {g['weights']}; "
            f"tune nDCG@10 {g['tune']['nDCG@10']:.3f}, fair nDCG@10 {g['fair']['nDCG@10']:.3f} "
            f"R@10 {g['fair']['Recall@10']:.3f}, MPR {g['mpr']['Recall@10(group)']:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
