"""Retrieval quality over all of Mathlib: every channel, the hybrid and hybrid + rerank, plus the searches that
chose the defaults.

Rows: BM25, the name channel, the dense channel (static model), the semantic channel (when the index has one),
hybrid, and hybrid + feature rerank (the default standard mode). Columns:

- MathlibQR **tuning rows**: the 136 rows whose target is outside the shared-171 fair subset, scored on the 93
  whose target is in the corpus (Recall@1, Recall@10, MRR). The defaults were chosen on these rows and nothing else;
- MathlibQR **fair slice** (810 rows, all targets present): nDCG@10, Recall@1, Recall@10: the reported numbers;
- MathlibMPR (69 problems, the English statement as one query): Recall@10(group) and Covered@10.

`--grid` repeats the searches that set the defaults, on the tuning rows only, and prints the chosen point's
fair-slice scores for reference: the fusion grid (rule: z-score with each floor of `Z_FLOORS`, or rrf x the
weight of each channel the index has beside BM25, `FUSION_GRID` x query-expansion weight, best mean reciprocal
rank), the reranker grid (feature weights, best MRR among points whose Recall@1 is not below the fused
retriever's), the exact-name check (300 seeded random declaration names as queries) and the title check (each name
Mathlib's docstrings give a result in bold, "Fermat's Little Theorem", as a query; any declaration carrying it
counts).
`--docstring-queries DIR` adds a larger check that no benchmark row feeds: 3,000 documented declarations (seeded,
none of them a MathlibQR or MathlibMPR target) lose their docstring, an index of all of Mathlib is built without
those docstrings into DIR (once, about 3 minutes), and the first paragraph of each hidden docstring is the query for
its declaration. Those queries are plain mathematical English about declarations the index knows only by name,
signature and the offline informaliser's text, like the 73% of Mathlib without a docstring. Nothing is tuned on
them; they test whether a choice made on 93 tuning rows holds on 3,000 queries. The MiniLM query encoder was
trained on other declarations' docstrings (`scripts/train_query_adapter.py` excludes these 3,000), so for it they
are queries of its own kind. Where the index has the adapter, a "hybrid+rerank, no query encoder" row is added
to the tables and to this check.
`--quantisation` measures what the int8 storage of the dense vectors costs: the dense channel's rankings with
float32 vectors recomputed from the index against the stored int8 ones.

    python packages/premise-search/benchmarks/bench_quality.py [--index DIR] [--grid] [--quantisation]
        [--docstring-queries DIR] [--json]

Without `--index` the default index (all of Mathlib, `open_default_index()`) is loaded, or built on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.corpus import load_default_corpus
from premise_search.evaluation import docstring_queries, load_mathlib_mpr, load_mathlib_qr, mpr_metrics, qr_metrics
from premise_search.index import load_index, open_default_index, save_index
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


def channel_coverage(engine: SearchEngine, queries: Sequence[str], targets: Sequence[int]) -> float:
    """Share of queries whose target is in at least one channel's top `engine.candidates` (what fusion can reach)."""
    found = np.zeros(len(queries), dtype=bool)
    for channel in engine.channels:
        for start in range(0, len(queries), 64):
            rankings = engine._channel(channel, queries[start : start + 64], engine.candidates, lookups=False)
            for i, (ids, _, _) in enumerate(rankings):
                found[start + i] |= targets[start + i] in set(np.asarray(ids).tolist())
    return float(found.mean())


def evaluate(engine: SearchEngine) -> dict[str, dict[str, Any]]:
    """Every mode's scores on the tuning rows, the fair slice and MathlibMPR."""
    tune_q, tune_t = tuning_rows(engine)
    fair = [r for r in load_mathlib_qr() if r.fair]
    mpr = load_mathlib_mpr()
    modes = [(c, c, False) for c in engine.channels] + [("hybrid", "hybrid", False), ("hybrid+rerank", "hybrid", True)]
    if _has_query_encoder(engine):
        modes.append((NO_QUERY_ENCODER, "hybrid", True))
    out: dict[str, dict[str, Any]] = {}
    for label, mode, rerank in modes:
        with without_query_encoder(engine) if label == NO_QUERY_ENCODER else contextlib.nullcontext():
            out[label] = _scores(engine, mode, rerank, tune_q, tune_t, fair, mpr)
    return out


def _scores(
    engine: SearchEngine,
    mode: str,
    rerank: bool,
    tune_q: Sequence[str],
    tune_t: Sequence[int],
    fair: Sequence[Any],
    mpr: Sequence[Any],
) -> dict[str, Any]:
    """One mode's scores on the tuning rows, the fair slice (overall and by style) and MathlibMPR."""
    t0 = time.perf_counter()
    tune = engine.search_batch(tune_q, 100, mode=mode, rerank=rerank)  # type: ignore[arg-type]
    ranked = engine.search_batch([r.query for r in fair], 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
    scores = qr_metrics([[h.name for h in hits] for hits in ranked], [r.full_name for r in fair], ks=(1, 10))
    mpr_ranked = engine.search_batch([q.nl_statement for q in mpr], 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
    group = mpr_metrics([[h.name for h in hits] for hits in mpr_ranked], mpr, ks=(10,))
    return {
        "tune": rank_row(ranks([[h.index for h in hits] for hits in tune], tune_t)),
        "fair": {key: float(np.mean(scores[key])) for key in ("nDCG@10", "Recall@1", "Recall@10")},
        "fair_by_style": {
            style: {
                key: float(np.mean([v for v, r in zip(scores[key], fair, strict=True) if r.style == style]))
                for key in ("nDCG@10", "Recall@10")
            }
            for style in sorted({r.style for r in fair})
        },
        "mpr": {"Recall@10(group)": group["Recall@10(group)"], "Covered@10": group["Covered@10"]},
        "seconds": time.perf_counter() - t0,
    }


#: The default standard mode with every query encoded and projected like a document (the trained query encoder,
#: its fine-tuned layers and adapter, switched off).
NO_QUERY_ENCODER = "hybrid+rerank, no query encoder"


def _has_query_encoder(engine: SearchEngine) -> bool:
    return getattr(getattr(engine.semantic, "shipped", None), "query_adapter", None) is not None


@contextlib.contextmanager
def without_query_encoder(engine: SearchEngine) -> Iterator[None]:
    """Switch the MiniLM query encoder off (and forget remembered query vectors) for a comparison row: without
    the adapter, plain-English queries take plain MiniLM and the PCA projection."""
    shipped = engine.semantic.shipped  # type: ignore[union-attr]
    adapter = shipped.query_adapter
    shipped.query_adapter = None
    engine.semantic.forget_queries()  # type: ignore[union-attr]
    try:
        yield
    finally:
        shipped.query_adapter = adapter
        engine.semantic.forget_queries()  # type: ignore[union-attr]


#: Weights tried for each channel beside BM25 (weight 1) in the fusion grid.
FUSION_GRID = {"name": (0, 0.25, 0.5, 1.0), "dense": (0, 0.25, 0.5, 1.0), "semantic": (0.25, 0.5, 1.0, 1.5, 2.0)}
#: z-score floors tried in the fusion grid (`zscore_fuse`; None: no floor).
Z_FLOORS = (None, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0)


def fusion_grid(engine: SearchEngine) -> dict[str, Any]:
    """Rule (z-score with each floor, or RRF) x each channel's weight x expansion weight on the tuning rows; best by
    MRR, then Recall@10."""
    queries, targets = tuning_rows(engine)
    original = engine.tokenizer
    others = [c for c in engine.channels if c != "bm25"]
    points = []
    try:
        for expansion in (0.25, 0.5, 1.0):
            engine.tokenizer = LeanTokenizer(replace(original.config, expansion_weight=expansion))
            channels = {c: engine._channel(c, queries, engine.candidates) for c in engine.channels}
            rules = [("zscore", floor) for floor in Z_FLOORS] + [("rrf", None)]
            for (rule, floor), *chosen in itertools.product(rules, *(FUSION_GRID[c] for c in others)):
                weights = {"bm25": 1.0, **dict(zip(others, chosen, strict=True))}
                used = [c for c in weights if weights[c] > 0]
                lists = []
                for i in range(len(queries)):
                    w = [weights[c] for c in used]
                    if rule == "rrf":
                        fused = rrf_fuse([channels[c][i][0] for c in used], weights=w)
                    else:
                        parts = [channels[c][i][:2] for c in used]
                        lookups = [channels[c][i][2] for c in used]
                        bound = -np.inf if floor is None else floor
                        fused = zscore_fuse(parts, weights=w, lookups=lookups, z_floor=bound)
                    lists.append([j for j, _ in fused[:100]])
                row = rank_row(ranks(lists, targets))
                point = {"rule": rule, "z_floor": floor, "weights": weights, "expansion_weight": expansion}
                points.append({**point, **row})
    finally:
        engine.tokenizer = original
    points.sort(key=lambda p: (-p["MRR"], -p["Recall@10"]))
    return {"n_points": len(points), "best": points[0], "runners_up": points[1:6]}


def reranker_grid(engine: SearchEngine) -> dict[str, Any]:
    """Feature weights on the tuning rows: best MRR among points that do not lower Recall@1 below the fused list."""
    queries, targets = tuning_rows(engine)
    fused = engine.search_batch(queries, engine.rerank_depth, rerank=False)
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
            [hits[p].index for p, _ in reranker.rerank(q, [h.declaration for h in hits], [h.score for h in hits])]
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


def title_check(engine: SearchEngine) -> dict[str, float]:
    """Recall@1 and @10 of hybrid and hybrid + rerank when the query is a name Mathlib's docstrings give a result
    in bold (`engine.result_names`: "Fermat's Little Theorem"), one spelling of each distinct name (by its words);
    a hit is any declaration the name names (`engine.named`: those that carry it as their own, else every one)."""
    spelled: dict[frozenset[str], str] = {}
    for title in sorted(engine.result_names):
        spelled.setdefault(frozenset(engine.tokenizer.typed_terms(title)), title)
    queries = list(spelled.values())
    carriers = [set(engine.named(q)) for q in queries]
    out: dict[str, float] = {"n_queries": len(queries)}
    for rerank in (False, True):
        hits = engine.search_batch(queries, 10, rerank=rerank)
        label = "rerank" if rerank else "fused"
        found = [[h.index in rows for h in row] for row, rows in zip(hits, carriers, strict=True)]
        out[f"{label} Recall@1"] = float(np.mean([row[0] for row in found]))
        out[f"{label} Recall@10"] = float(np.mean([any(row) for row in found]))
    return out


def docstring_check(directory: str) -> dict[str, Any]:
    """Every standard mode on the docstring queries, over all of Mathlib with their docstrings hidden."""
    corpus = load_default_corpus()
    pairs = docstring_queries(corpus)
    if not (Path(directory) / "manifest.json").is_file():
        hidden = {row for row, _ in pairs}
        stripped = [replace(d, docstring=None) if i in hidden else d for i, d in enumerate(corpus)]
        save_index(SearchEngine.build(stripped), directory)
    engine = load_index(directory)
    queries, targets = [q for _, q in pairs], [row for row, _ in pairs]
    out: dict[str, Any] = {"n_queries": len(queries), "coverage": channel_coverage(engine, queries, targets)}
    for label, mode, rerank in (
        ("bm25", "bm25", False),
        ("hybrid", "hybrid", False),
        ("hybrid+rerank", "hybrid", True),
    ):
        hits = engine.search_batch(queries, 100, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        out[label] = rank_row(ranks([[h.index for h in row] for row in hits], targets))
    if _has_query_encoder(engine):
        with without_query_encoder(engine):
            hits = engine.search_batch(queries, 100, mode="hybrid", rerank=True)
        out[NO_QUERY_ENCODER] = rank_row(ranks([[h.index for h in row] for row in hits], targets))
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
        ranked = engine.search_batch([r.query for r in fair], 10, mode="dense", rerank=False)
        scores = qr_metrics([[h.name for h in hits] for hits in ranked], [r.full_name for r in fair], ks=(10,))
        tune = engine.search_batch(tune_q, 100, mode="dense", rerank=False)
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
    parser.add_argument(
        "--docstring-queries", metavar="DIR", help="the docstring-query check, its index built into DIR once"
    )
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
    tune_q, tune_t = tuning_rows(engine)
    fair = [r for r in load_mathlib_qr() if r.fair]
    result["coverage"] = {
        "tune": channel_coverage(engine, tune_q, tune_t),
        "fair": channel_coverage(engine, [r.query for r in fair], [int(engine.index_of(r.full_name)) for r in fair]),  # type: ignore[arg-type]
    }
    if args.grid:
        result["fusion_grid"] = fusion_grid(engine)
        result["reranker_grid"] = reranker_grid(engine)
        result["exact_names"] = exact_name_check(engine)
        result["titles"] = title_check(engine)
    if args.quantisation:
        result["quantisation"] = quantisation(engine)
    if args.docstring_queries:
        result["docstring_queries"] = docstring_check(args.docstring_queries)
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
    styles = sorted({style for row in result["modes"].values() for style in row["fair_by_style"]})
    cover = result["coverage"]
    print(
        f"targets in some channel's top {engine.candidates}: tuning rows {cover['tune']:.3f}, fair {cover['fair']:.3f}"
    )
    print("fair slice by query style, nDCG@10 / Recall@10:")
    print("| retriever | " + " | ".join(styles) + " |")
    print("|---" * (len(styles) + 1) + "|")
    for label, row in result["modes"].items():
        cells = [
            f"{row['fair_by_style'][s]['nDCG@10']:.3f} / {row['fair_by_style'][s]['Recall@10']:.3f}" for s in styles
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.grid:
        g, r = result["fusion_grid"], result["reranker_grid"]
        print(f"fusion grid ({g['n_points']} points): best {g['best']}")
        for p in g["runners_up"]:
            print(f"  runner-up {p}")
        print(f"reranker grid ({r['n_points']} points, {r['n_allowed']} keep R@1 >= fused {r['fused']}):")
        for p in r["best"]:
            print(f"  {p}")
        print(f"exact-name queries, Recall@1: {result['exact_names']}")
        print(f"result names from docstrings as queries: {result['titles']}")
    if args.quantisation:
        for label, row in result["quantisation"].items():
            print(f"dense vectors {label}: {row}")
    if args.docstring_queries:
        check = result["docstring_queries"]
        print(
            f"docstring queries ({check['n_queries']}, docstrings hidden from the index; "
            f"targets in some channel's top {engine.candidates}: {check['coverage']:.3f}):"
        )
        for label in ("bm25", "hybrid", "hybrid+rerank", NO_QUERY_ENCODER):
            if label in check:
                print(f"  {label}: {check[label]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
