"""LeanSearch v2's benchmarks and metrics: MathlibQR (one relevant declaration) and MathlibMPR (premise groups).

Metric definitions follow upstream `eval/search_metrics.py` and `eval/premise_metrics.py` exactly:

- MathlibQR: a result matches when its dotted name equals `full_name`; with `pos` the 1-based position of the
  first match, `nDCG@k = 1 / log2(pos + 1)` if `pos <= k` else 0 (one relevant document, so IDCG = 1), and
  `Recall@k = 1` if `pos <= k` else 0. k in {1, 5, 10, 50, 100}; slices `fair` (810 rows whose target is in
  `MathlibQR_shared171.json`) and `full` (946 rows).
- MathlibMPR: retrieved ids `Module::Name[::n]` are compared by `short_name`; a premise group is hit at k when
  any of its docs is in the top k; `Recall@k(group)` = hit groups / all groups (original + alternative) per
  query, averaged over queries and reported x100 as upstream does; `Covered@k` = all original groups hit, or
  (there are alternative groups and all of them are hit). k in {5, 10, 20, 30, 50}.

The batch QR metrics go through `repro_core.metrics.ndcg` / `recall_at_k` on rank-derived scores; the
per-query functions here are the upstream formulas and the tests check that both agree.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.corpus import Declaration, read_text
from repro_core.errors import InputError
from repro_core.metrics import ndcg, recall_at_k

__all__ = [
    "DOCSTRING_QUERIES",
    "DOCSTRING_SEED",
    "MPR_KS",
    "QR_KS",
    "QR_STYLES",
    "MPRQuery",
    "PremiseGroup",
    "QRQuery",
    "benchmark_path",
    "benchmark_targets",
    "covered_at_k",
    "docstring_pool",
    "docstring_queries",
    "group_hits",
    "load_mathlib_mpr",
    "load_mathlib_qr",
    "load_prop_ids",
    "mpr_metrics",
    "ndcg_at_k",
    "qr_metrics",
    "recall_at_k_single",
    "recall_group_at_k",
    "short_name",
]

#: Cut-offs of upstream's MathlibQR evaluation.
QR_KS = (1, 5, 10, 50, 100)
#: Cut-offs of upstream's MathlibMPR evaluation.
MPR_KS = (5, 10, 20, 30, 50)
#: MathlibQR query fields, in file order.
QR_STYLES = ("q1a_lean", "q1b_latex", "q1c_natural", "q2_slogan", "q3_nickname", "q4_special_case")


def benchmark_path(name: str) -> Path:
    """Path of a LeanSearch v2 benchmark file shipped in the package (`MathlibQR.json`, `MathlibMPR.json`, ...)."""
    return Path(str(resources.files("premise_search").joinpath("data", "lsv2-benchmark", name)))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path=path) from None


@dataclass(frozen=True)
class QRQuery:
    """One (declaration, query) row of MathlibQR."""

    qid: str
    full_name: str
    style: str
    query: str
    difficulty: str
    kind: str
    fair: bool


def load_mathlib_qr(
    path: str | os.PathLike[str] | None = None, shared_path: str | os.PathLike[str] | None = None
) -> list[QRQuery]:
    """MathlibQR rows: one per non-empty query field (946 for the released file), `fair` from the shared-171 file.

    Defaults are the files shipped in the package; `shared_path` defaults to `MathlibQR_shared171.json` beside
    `path` when it exists there, else the shipped one.
    """
    path = Path(path) if path is not None else benchmark_path("MathlibQR.json")
    if shared_path is None:
        beside = path.parent / "MathlibQR_shared171.json"
        shared_path = beside if beside.is_file() else benchmark_path("MathlibQR_shared171.json")
    shared_file = Path(shared_path)
    data = _read_json(path)
    shared = _read_json(shared_file)
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects", path=path)
    if not isinstance(shared, dict) or not isinstance(shared.get("shared_declarations"), list):
        raise InputError(
            "expected an object with a list 'shared_declarations'", path=shared_file, field="shared_declarations"
        )
    fair = set(shared["shared_declarations"])
    rows = []
    for number, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"item {number}: expected an object", path=path)
        name = item.get("full_name")
        if not isinstance(name, str) or not name:
            raise InputError(f"item {number}: missing full_name", path=path, field="full_name")
        for style in QR_STYLES:
            text = item.get(style, "")
            if not isinstance(text, str):
                raise InputError(f"item {number}: expected a string", path=path, field=style)
            if text.strip():
                rows.append(
                    QRQuery(
                        str(item.get("id", number)),
                        name,
                        style,
                        text,
                        str(item.get("difficulty", "")),
                        str(item.get("kind", "")),
                        name in fair,
                    )
                )
    return rows


@dataclass(frozen=True)
class PremiseGroup:
    """A set of interchangeable premises: hit when any of `docs` is retrieved."""

    kind: str
    docs: tuple[str, ...]


@dataclass(frozen=True)
class MPRQuery:
    """One MathlibMPR problem."""

    qid: str
    pr: int | None
    main_result: str
    nl_statement: str
    formal_statement: str
    groups: tuple[PremiseGroup, ...]


def load_mathlib_mpr(path: str | os.PathLike[str] | None = None) -> list[MPRQuery]:
    """MathlibMPR problems (69 in the released file, 204 premise groups)."""
    path = Path(path) if path is not None else benchmark_path("MathlibMPR.json")
    data = _read_json(path)
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects", path=path)
    out = []
    for number, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"item {number}: expected an object", path=path)
        groups = []
        raw_groups = item.get("premise_group")
        if not isinstance(raw_groups, list):
            raise InputError(f"item {number}: expected a list", path=path, field="premise_group")
        for group in raw_groups:
            kind = group.get("kind") if isinstance(group, dict) else None
            docs = group.get("docs") if isinstance(group, dict) else None
            if kind not in ("original", "alternative") or not isinstance(docs, list):
                raise InputError(
                    f"item {number}: a group needs kind original|alternative and a docs list",
                    path=path,
                    field="premise_group",
                )
            groups.append(PremiseGroup(kind, tuple(str(d) for d in docs)))
        out.append(
            MPRQuery(
                str(item.get("id", number)),
                item.get("pr"),
                str(item.get("formal_main_result", "")),
                str(item.get("NL_main_result", "")),
                str(item.get("formal_statement", "")),
                tuple(groups),
            )
        )
    return out


def load_prop_ids(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Ids of `MathlibMPR_Prop_ids.txt` (lines starting with `#` are comments): 50 in the released file."""
    path = Path(path) if path is not None else benchmark_path("MathlibMPR_Prop_ids.txt")
    lines = read_text(path).splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


# -- the docstring-query check ----------------------------------------------------------------------------------
def benchmark_targets() -> set[str]:
    """Every declaration name a shipped benchmark asks for: MathlibQR targets, MathlibMPR results and premises."""
    targets = {r.full_name for r in load_mathlib_qr()}
    for problem in load_mathlib_mpr():
        targets.add(problem.main_result)
        targets.update(short_name(doc) for group in problem.groups for doc in group.docs)
    return targets


#: The docstring-query check: how many queries, and the seed that picks them.
DOCSTRING_QUERIES, DOCSTRING_SEED = 3000, 20261204
#: Kinds whose docstrings describe a mathematical statement or object.
_DOCSTRING_KINDS = ("theorem", "def", "structure", "class", "abbrev", "inductive")


def docstring_pool(corpus: Sequence[Declaration], *, strip_code: bool = False) -> list[tuple[int, str]]:
    """(corpus row, English query) for every declaration whose docstring opens with a usable paragraph.

    The query is the docstring's first paragraph, 5-50 words. Docstrings with Lean code in backticks are left out
    (a user's English has none), or with `strip_code` kept with the backticks removed (the query adapter's
    training then keeps those that read as plain English). Excluded: every benchmark target
    (`benchmark_targets`), deprecated and internal declarations. The docstring-query check samples the default
    pool; the query adapter trains on the rest.
    """
    targets = benchmark_targets()
    pool = []
    for row, decl in enumerate(corpus):
        doc = (decl.docstring or "").strip()
        if not doc or decl.deprecated or decl.name in targets or decl.short_name.startswith("_"):
            continue
        if decl.kind not in _DOCSTRING_KINDS or ("`" in doc and not strip_code):
            continue
        first = re.split(r"\n\s*\n", doc)[0].replace("\n", " ").replace("`", "").strip()
        if 5 <= len(first.split()) <= 50:
            pool.append((row, first))
    return pool


def docstring_queries(corpus: Sequence[Declaration]) -> list[tuple[int, str]]:
    """The docstring-query check: `DOCSTRING_QUERIES` pairs of `docstring_pool`, seeded (`DOCSTRING_SEED`)."""
    return random.Random(DOCSTRING_SEED).sample(docstring_pool(corpus), DOCSTRING_QUERIES)


# -- MathlibQR metrics ------------------------------------------------------------------------------------------
def _position(retrieved: Sequence[str], target: str) -> int | None:
    for pos, name in enumerate(retrieved, start=1):
        if name == target:
            return pos
    return None


def ndcg_at_k(retrieved: Sequence[str], target: str, k: int) -> float:
    """Upstream's single-relevant nDCG@k: `1 / log2(pos + 1)` for the first match at 1-based `pos <= k`, else 0."""
    pos = _position(retrieved, target)
    return 1.0 / math.log2(pos + 1) if pos is not None and pos <= k else 0.0


def recall_at_k_single(retrieved: Sequence[str], target: str, k: int) -> float:
    """Upstream's single-relevant Recall@k: 1 if the target is in the top `k`, else 0."""
    pos = _position(retrieved, target)
    return 1.0 if pos is not None and pos <= k else 0.0


def qr_metrics(
    rankings: Sequence[Sequence[str]], targets: Sequence[str], ks: Sequence[int] = QR_KS
) -> dict[str, np.ndarray]:
    """Per-query nDCG@k and Recall@k for every k: `{"nDCG@10": [n_queries], "Recall@10": [n_queries], ...}`.

    Each ranking becomes a score row (position p gets score L - p) with the first match of its target as the one
    relevant item; a query whose target was not retrieved gets an extra relevant item ranked last, so it scores
    0 at every k <= L. Computed with `repro_core.metrics.ndcg` / `recall_at_k`, equal to `ndcg_at_k` /
    `recall_at_k_single` query by query.
    """
    if len(rankings) != len(targets):
        raise ValueError(f"targets: {len(targets)} values for {len(rankings)} rankings")
    n = len(rankings)
    width = max([len(r) for r in rankings] + [max(ks, default=1)]) + 1
    scores = np.tile(np.arange(width, 0, -1, dtype=np.float64), (n, 1))
    relevance = np.zeros((n, width))
    for i, (ranking, target) in enumerate(zip(rankings, targets, strict=True)):
        pos = _position(ranking, target)
        relevance[i, (pos - 1) if pos is not None else width - 1] = 1.0
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k >= width:
            raise ValueError(f"ks: k = {k} needs rankings of at least {k} results")
        out[f"nDCG@{k}"] = np.asarray(ndcg(scores, relevance, k=k, reduce="none"))
        out[f"Recall@{k}"] = np.asarray(recall_at_k(scores, relevance, k, reduce="none"))
    return out


# -- MathlibMPR metrics -----------------------------------------------------------------------------------------
def short_name(doc_id: str) -> str:
    """Upstream's doc-id normalisation: drop a trailing `::<int>`, then keep the last `::` part.

    `short_name("Mathlib.Foo::Foo.bar::17") == "Foo.bar"`; a bare name is returned unchanged.
    """
    parts = doc_id.split("::")
    if len(parts) > 1 and parts[-1].isdigit():
        parts = parts[:-1]
    return parts[-1]


def group_hits(retrieved: Sequence[str], groups: Sequence[PremiseGroup], k: int) -> list[bool]:
    """For each group: is any of its docs among the `short_name`s of the top `k` retrieved ids?"""
    top = {short_name(d) for d in retrieved[:k]}
    return [any(doc in top for doc in g.docs) for g in groups]


def recall_group_at_k(retrieved: Sequence[str], groups: Sequence[PremiseGroup], k: int) -> float:
    """Hit groups / all groups (original and alternative) for one query, in [0, 1]; 0 when there is no group."""
    hits = group_hits(retrieved, groups, k)
    return sum(hits) / len(hits) if hits else 0.0


def covered_at_k(retrieved: Sequence[str], groups: Sequence[PremiseGroup], k: int) -> float:
    """1 if every original group is hit, or there are alternative groups and every one of them is hit; else 0."""
    hits = group_hits(retrieved, groups, k)
    original = [h for h, g in zip(hits, groups, strict=True) if g.kind == "original"]
    alternative = [h for h, g in zip(hits, groups, strict=True) if g.kind == "alternative"]
    if original and all(original):
        return 1.0
    return 1.0 if alternative and all(alternative) else 0.0


def mpr_metrics(
    rankings: Sequence[Sequence[str]], queries: Sequence[MPRQuery], ks: Sequence[int] = MPR_KS
) -> dict[str, float]:
    """Macro averages x100 (as upstream reports them): `{"Recall@10(group)": 46.1, "Covered@10": ..., ...}`."""
    if len(rankings) != len(queries):
        raise ValueError(f"queries: {len(queries)} values for {len(rankings)} rankings")
    out: dict[str, float] = {}
    for k in ks:
        rec = [recall_group_at_k(r, q.groups, k) for r, q in zip(rankings, queries, strict=True)]
        cov = [covered_at_k(r, q.groups, k) for r, q in zip(rankings, queries, strict=True)]
        out[f"Recall@{k}(group)"] = 100.0 * float(np.mean(rec)) if rec else float("nan")
        out[f"Covered@{k}"] = 100.0 * float(np.mean(cov)) if cov else float("nan")
    return out
