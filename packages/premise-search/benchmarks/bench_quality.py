"""Retrieval quality over all of Mathlib: every channel, the hybrid and hybrid + rerank, plus the searches that
chose the defaults.

Rows: BM25, the name channel, the dense channel (static model), the semantic channel (when the index has one),
hybrid, and hybrid + feature rerank (the default standard mode). Columns:

- MathlibQR **tuning rows**: the 136 rows whose target is outside the shared-171 fair subset, scored on the 93
  whose target is in the corpus (Recall@1, Recall@10, MRR). The defaults were chosen on these rows and nothing else;
- MathlibQR **fair slice** (810 rows, all targets present): nDCG@10, Recall@1, Recall@10: the reported numbers;
- MathlibMPR (69 problems, the English statement as one query): Recall@10(group) and Covered@10.

`--grid` repeats the searches that set the defaults, on the tuning rows only, and prints the chosen point's
fair-slice scores for reference: the fusion grid (rule zscore/rrf x name weight x dense weight x query-expansion
weight, best mean reciprocal rank), the reranker grid (feature weights, best MRR among points whose Recall@1 is
not below the fused retriever's), and the exact-name check (300 seeded random declaration names as queries).
`--quantisation` measures what the int8 storage of the dense vectors costs: the dense channel's rankings with
float32 vectors recomputed from the index against the stored int8 ones.

    python packages/premise-search/benchmarks/bench_quality.py [--index DIR] [--grid] [--quantisation] [--json]

Without `--index` the default index (all of Mathlib, `open_default_index()`) is loaded, or built on first use.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from premise_search.evaluation import load_mathlib_mpr, load_mathlib_qr, mpr_metrics, qr_metrics
from premise_search.index import load_index, open_default_index
from premise_search.rerank import FeatureReranker, FeatureWeights
from premise_search.retrieval import SearchEngine, _dense_vectors, rrf_fuse, zscore_fuse
from premise_search.tokenize import LeanTokenizer


def ranks(lists: Sequence[Sequence[int]], targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each target in its list (a large number when absent)."""
    out = []
    for ranked, target in zip(lists, targets, strict=True):
        ranked = list(ranked)
        out.append(ranked.index(target) + 1 if target in ranked else 10**9)
    return np.array(out)


def rank_row(r: np.ndarray) -> dict[str, float]:
    return {"Recall@1": float((r <= 1).mean()), "Recall@10": float((r <= 10).mean()), "MRR": float((1.0 / r).mean())}


def tuning_rows(engine: SearchEngine) -> tuple[list[str], list[int]]:
    rows = [r for r in load_mathlib_qr() if not r.fair and engine.index_of(r.full_name) is not None]
    return [r.query for r in rows], [int(engine.index_of(r.full_name)) for r in rows]  # type: ignore[arg-type]


def evaluate(engine: SearchEngine) -> dict[str, dict[str, Any]]:
    """Every mode's scores on the tuning rows, the fair slice and MathlibMPR."""
    tune_q, tune_t = tuning_rows(engine)
    fair = [r for r in load_mathlib_qr() if r.fair]
    mpr = load_mathlib_mpr()
    modes = [(c, c, False) for c in engine.channels] + [("hybrid", "hybrid", False), ("hybrid+rerank", "hybrid", True)]
    out: dict[str, dict[str, Any]] = {}
    for label, mode, rerank in modes:
        t0 = time.perf_counter()
        tune = engine.search_batch(tune_q, 100, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        ranked = engine.search_batch([r.query for r in fair], 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        scores = qr_metrics([[h.name for h in hits] for hits in ranked], [r.full_name for r in fair], ks=(1, 10))
        mpr_ranked = engine.search_batch([q.nl_statement for q in mpr], 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        group = mpr_metrics([[h.name for h in hits] for hits in mpr_ranked], mpr, ks=(10,))
        out[label] = {
            "tune": rank_row(ranks([[h.index for h in hits] for hits in tune], tune_t)),
            "fair": {key: float(np.mean(scores[key])) for key in ("nDCG@10", "Recall@1", "Recall@10")},
            "mpr": {"Recall@10(group)": group["Recall@10(group)"], "Covered@10": group["Covered@10"]},
            "seconds": time.perf_counter() - t0,
        }
    return out


def fusion_grid(engine: SearchEngine) -> dict[str, Any]:
    """Rule x name weight x dense weight x expansion weight on the tuning rows; best by MRR, then Recall@10."""
    queries, targets = tuning_rows(engine)
    original = engine.tokenizer
    points = []
    try:
        for expansion in (0.25, 0.5, 1.0):
            engine.tokenizer = LeanTokenizer(replace(original.config, expansion_weight=expansion))
            channels = {c: engine._channel(c, queries, engine.candidates) for c in ("bm25", "name", "dense")}
            for rule, name_w, dense_w in itertools.product(("zscore", "rrf"), (0, 0.25, 0.5, 1.0), (0, 0.25, 0.5, 1.0)):
                weights = {"bm25": 1.0, "name": name_w, "dense": dense_w}
                used = [c for c in weights if weights[c] > 0]
                lists = []
                for i in range(len(queries)):
                    w = [weights[c] for c in used]
                    if rule == "rrf":
                        fused = rrf_fuse([channels[c][i][0] for c in used], weights=w)
                    else:
                        parts = [channels[c][i][:2] for c in used]
                        fused = zscore_fuse(parts, weights=w, lookups=[channels[c][i][2] for c in used])
                    lists.append([j for j, _ in fused[:100]])
                row = rank_row(ranks(lists, targets))
                points.append({"rule": rule, "weights": weights, "expansion_weight": expansion, **row})
    finally:
        engine.tokenizer = original
    points.sort(key=lambda p: (-p["MRR"], -p["Recall@10"]))
    return {"n_points": len(points), "best": points[0], "runners_up": points[1:6]}


def reranker_grid(engine: SearchEngine) -> dict[str, Any]:
    """Feature weights on the tuning rows: best MRR among points that do not lower Recall@1 below the fused list."""
    queries, targets = tuning_rows(engine)
    fused = engine.search_batch(queries, engine.rerank_depth)
    base = rank_row(ranks([[h.index for h in hits] for hits in fused], targets))
    points = []
    for exact, name_cover, query_cover, kind, brevity in itertools.product(
        (0, 0.5, 1.0), (0, 0.1, 0.35), (0, 0.1, 0.35), (0, 0.1), (0, 0.1)
    ):
        weights = FeatureWeights(
            exact=exact, name_cover=name_cover, query_cover=query_cover, kind=kind, brevity=brevity
        )
        reranker = FeatureReranker(weights, tokenizer=engine.tokenizer)
        lists = [
            [hits[p].index for p, _ in reranker.rerank(q, [h.declaration for h in hits])]
            for q, hits in zip(queries, fused, strict=True)
        ]
        points.append({"weights": weights.to_json(), **rank_row(ranks(lists, targets))})
    allowed = [p for p in points if p["Recall@1"] >= base["Recall@1"]]
    allowed.sort(key=lambda p: (-p["MRR"], -p["Recall@10"]))
    return {"fused": base, "n_points": len(points), "n_allowed": len(allowed), "best": allowed[:5]}


def exact_name_check(engine: SearchEngine, n: int = 300, seed: int = 0) -> dict[str, float]:
    """Recall@1 of hybrid + rerank when the query is a declaration's full name (300 seeded random names)."""
    rows = random.Random(seed).sample(range(len(engine)), n)
    names = [engine.corpus[i].name for i in rows]
    targets = [int(engine.index_of(name)) for name in names]  # type: ignore[arg-type]
    out = {}
    for rerank in (False, True):
        hits = engine.search_batch(names, 1, rerank=rerank)
        out["rerank" if rerank else "fused"] = float(
            np.mean([h[0].index == t for h, t in zip(hits, targets, strict=True)])
        )
    return out


def quantisation(engine: SearchEngine) -> dict[str, Any]:
    """Dense-channel quality with float32 vectors (recomputed from the index) against the stored int8 ones."""
    if engine.dense_model is None:
        return {}
    exact = _dense_vectors(engine.text_bm25, engine.dense_model, lambda *args: None)
    stored = engine.dense_vectors
    fair = [r for r in load_mathlib_qr() if r.fair]
    tune_q, tune_t = tuning_rows(engine)
    out: dict[str, Any] = {}
    for label, vectors in (("float32", exact), ("int8 (stored)", stored)):
        engine.dense_vectors = vectors
        ranked = engine.search_batch([r.query for r in fair], 10, mode="dense")
        scores = qr_metrics([[h.name for h in hits] for hits in ranked], [r.full_name for r in fair], ks=(10,))
        tune = engine.search_batch(tune_q, 100, mode="dense")
        hybrid = engine.search_batch([r.query for r in fair], 10, rerank=True)
        hybrid_scores = qr_metrics([[h.name for h in hits] for hits in hybrid], [r.full_name for r in fair], ks=(10,))
        out[label] = {
            "dense fair nDCG@10": float(np.mean(scores["nDCG@10"])),
            "dense fair Recall@10": float(np.mean(scores["Recall@10"])),
            "dense tune MRR": rank_row(ranks([[h.index for h in hits] for hits in tune], tune_t))["MRR"],
            "hybrid+rerank fair nDCG@10": float(np.mean(hybrid_scores["nDCG@10"])),
        }
    engine.dense_vectors = stored
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="load this saved index (default: the default index of all of Mathlib)")
    parser.add_argument("--grid", action="store_true", help="repeat the searches that chose the defaults")
    parser.add_argument("--quantisation", action="store_true", help="measure the cost of int8 dense vectors")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    engine = load_index(args.index) if args.index else open_default_index()
    result: dict[str, Any] = {
        "n_docs": len(engine),
        "corpus": engine.corpus_info.get("label"),
        "channels": list(engine.channels),
        "fusion": engine.fusion,
        "weights": engine.channel_weights,
        "reranker": engine.reranker.id,
        "open_s": time.perf_counter() - t0,
        "modes": evaluate(engine),
    }
    if args.grid:
        result["fusion_grid"] = fusion_grid(engine)
        result["reranker_grid"] = reranker_grid(engine)
        result["exact_names"] = exact_name_check(engine)
    if args.quantisation:
        result["quantisation"] = quantisation(engine)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"{result['corpus']}: {len(engine):,} declarations; {engine.fusion} {engine.channel_weights}")
    print(
        "| retriever | tune R@1 | tune R@10 | tune MRR | fair nDCG@10 | fair R@1 | fair R@10 "
        "| MPR R@10(group) % | MPR Cov@10 % |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, row in result["modes"].items():
        t, f, m = row["tune"], row["fair"], row["mpr"]
        print(
            f"| {label} | {t['Recall@1']:.3f} | {t['Recall@10']:.3f} | {t['MRR']:.3f} | {f['nDCG@10']:.3f} "
            f"| {f['Recall@1']:.3f} | {f['Recall@10']:.3f} | {m['Recall@10(group)']:.1f} | {m['Covered@10']:.1f} |"
        )
    if args.grid:
        g, r = result["fusion_grid"], result["reranker_grid"]
        print(f"fusion grid ({g['n_points']} points): best {g['best']}")
        for p in g["runners_up"]:
            print(f"  runner-up {p}")
        print(f"reranker grid ({r['n_points']} points, {r['n_allowed']} keep R@1 >= fused {r['fused']}):")
        for p in r["best"]:
            print(f"  {p}")
        print(f"exact-name queries, Recall@1: {result['exact_names']}")
    if args.quantisation:
        for label, row in result["quantisation"].items():
            print(f"dense vectors {label}: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
