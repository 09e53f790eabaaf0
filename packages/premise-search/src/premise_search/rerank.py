"""A deterministic feature reranker: re-scores the top candidates of a retriever with cheap Lean-aware features.

The paper reranks with Qwen3-Reranker-8B (P(yes) of a yes/no judgement). Offline we use features that capture
what that model mostly rewards on Mathlib queries, each in [0, 1] but the prior:

- `prior`: the retriever's own score, standardised over the candidates being reranked (z-score; 0 when they
  all tie), so the reranker keeps how far apart the retriever put them, not only their order. Without scores
  (a caller that passes none) it is the order, `1 / (1 + rank / 10)` (rank 0-based). Why scores: a rank prior
  turns a clear first place and a near tie into the same step, so small feature differences overturned clear
  retriever wins (README, "Reranking");
- `exact`: the query names the declaration: it is the declaration's full name or last component, or it is not
  a statement (no `=`, `↔`, `≤`, `:`, ...) and contains one of them written as a Lean identifier (with a dot,
  an underscore or an inner capital, or alone in backticks). A plain English word that happens to be a name
  (`factorial`, `slope`, `size`) does not count, nor does a name inside a statement: otherwise every short
  definition named by a query word jumps above the theorem asked for;
- `name_cover`: the fraction of the declaration's last-component words that occur in the query;
- `query_cover`: the fraction of the query's distinct tokens found in the declaration's text;
- `kind`: the query asks for a theorem/lemma and this is one, or for a definition/structure/class/instance
  and this is one (the LSv2 query instruction makes the same distinction);
- `brevity`: shorter names first among equals (`Lattice` before `Lattice.toSemilatticeSup`), `1 / n_words`;
- `deprecated`: deprecated aliases duplicate a live declaration and are penalised.

Score = weights · features; ties keep the retriever's order. The default weights are the best mean reciprocal
rank of a 108-point grid on the MathlibQR tuning rows over all of Mathlib, where the reranker must not lower
Recall@1 below the fused retriever's; `exact` (the tuning rows never name their target) is the smallest weight
that gives exact-name queries Recall@1 >= 0.95 (README, "How the defaults were chosen").

`CrossEncoderReranker(path)` is the neural option: a sentence-transformers cross-encoder loaded from a local
model directory the user already has (no PyPI package ships cross-encoder weights, and we never download). It
needs the `semantic` extra. If scoring fails, it keeps the retriever's order with scores `(n - i) / n`, as
LeanSearch v2 does when its reranker fails.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from premise_search.corpus import Declaration
from premise_search.embed import semantic_text
from premise_search.tokenize import LeanTokenizer, split_identifier
from repro_core.errors import ConfigError, InputError
from repro_core.optional import require

__all__ = ["CrossEncoderReranker", "FeatureReranker", "FeatureWeights", "Reranker"]

#: The distribution whose `semantic` extra installs the optional models.
_DIST = "premise-search"

logger = logging.getLogger(__name__)

_THEOREM_WORDS = re.compile(r"\b(theorem|lemma|proof|prove|iff|implies|equals|holds)\b|[=↔≤<∣]", re.IGNORECASE)
_DEFINITION_WORDS = re.compile(
    r"\b(definition|define|defined|structure|class|typeclass|type of|instance|the notion|notion of|inductive)\b",
    re.IGNORECASE,
)
_STATEMENT = re.compile(r"[=↔≤≥<>∀∃→∣≠∈⊆:]")
_THEOREM_KINDS = frozenset({"theorem", "alias"})
_DEFINITION_KINDS = frozenset({"def", "abbrev", "structure", "class", "inductive", "instance", "opaque"})


def _standardised(scores: Sequence[float] | None, n: int) -> list[float] | None:
    """Retriever scores as z-scores over the candidates (all 0 when they tie), or None without scores."""
    if scores is None:
        return None
    values = [float(x) for x in scores]
    if len(values) != n:
        raise ConfigError(f"scores: expected {n} values, one per candidate, got {len(values)}")
    if not all(math.isfinite(x) for x in values):
        raise ConfigError("scores: expected finite numbers")
    mean = sum(values) / n if n else 0.0
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / n) if n else 0.0
    return [(x - mean) / std if std > 0 else 0.0 for x in values]


def _names_something(word: str) -> bool:
    """Is a query word written as a Lean identifier (`Nat.factorial`, `add_pow`, `orderOf`, `` `slope` ``)?

    A word quoted alone in backticks counts; a plain word inside a quoted expression (`` `Associated (a * b)` ``)
    does not, since it is part of a statement, not the name of the declaration asked for.
    """
    if len(word) > 2 and word.startswith("`") and word.endswith("`"):
        return True
    word = word.strip("`")
    return "." in word.strip(".") or "_" in word or any(c.isupper() for c in word[1:])


class Reranker(Protocol):
    """Re-orders candidates for a query; returns (candidate position, new score) pairs, best first."""

    @property
    def id(self) -> str: ...

    def rerank(
        self, query: str, candidates: Sequence[Declaration], scores: Sequence[float] | None = None
    ) -> list[tuple[int, float]]: ...


@dataclass(frozen=True)
class FeatureWeights:
    """Weights of the reranker's features (see the module docstring)."""

    prior: float = 1.0
    exact: float = 1.0
    name_cover: float = 0.0
    query_cover: float = 0.35
    kind: float = 0.0
    brevity: float = 0.1
    deprecated: float = -0.5

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"FeatureWeights.{key}: expected a number, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> FeatureWeights:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(**data)


class FeatureReranker:
    """The default reranker: a fixed linear score over `features()`; deterministic, no model."""

    VERSION = 3

    def __init__(self, weights: FeatureWeights | None = None, tokenizer: LeanTokenizer | None = None) -> None:
        self.weights = weights if weights is not None else FeatureWeights()
        self.tokenizer = tokenizer if tokenizer is not None else LeanTokenizer()
        self._text_tokens: dict[tuple[str, str, int | None], frozenset[str]] = {}

    def _decl_tokens(self, decl: Declaration) -> frozenset[str]:
        """Token set of a declaration's text, cached (the same candidates come back query after query)."""
        key = (decl.module, decl.name, decl.line)
        hit = self._text_tokens.get(key)
        if hit is None:
            hit = frozenset(self.tokenizer.tokenize(f"{decl.name} {decl.signature} {decl.docstring or ''}"))
            if len(self._text_tokens) < 300_000:
                self._text_tokens[key] = hit
        return hit

    @property
    def id(self) -> str:
        return f"features-v{self.VERSION}:{self.weights.to_json()}"

    def features(
        self, query: str, candidates: Sequence[Declaration], scores: Sequence[float] | None = None
    ) -> list[dict[str, float]]:
        """One feature dict per candidate, in the given (retriever) order; `scores` are the retriever's."""
        prior = _standardised(scores, len(candidates))
        q_tokens = set(self.tokenizer.tokenize(query))
        whole = query.strip().strip("`")
        # a statement mentions names, it does not ask for them: `klDiv μ ν = 0 ↔ μ = ν` wants a theorem
        statement = bool(_STATEMENT.search(query))
        q_words = set() if statement else {w for w in re.findall(r"[^\s(){}\[\],:;$]+", query) if _names_something(w)}
        q_words = {w.strip("`") for w in q_words}
        wants_theorem = bool(_THEOREM_WORDS.search(query))
        wants_definition = bool(_DEFINITION_WORDS.search(query))
        out = []
        for rank, decl in enumerate(candidates):
            last = decl.short_name
            named = decl.name in q_words or (len(last) > 2 and last in q_words)
            exact = 1.0 if named or whole in (decl.name, last) else 0.0
            name_words = set(split_identifier(last))
            name_cover = len(name_words & q_tokens) / len(name_words) if name_words else 0.0
            text_tokens = self._decl_tokens(decl)
            query_cover = len(q_tokens & text_tokens) / len(q_tokens) if q_tokens else 0.0
            kind = 0.0
            if (wants_theorem and decl.kind in _THEOREM_KINDS) or (wants_definition and decl.kind in _DEFINITION_KINDS):
                kind = 1.0
            out.append(
                {
                    "prior": 1.0 / (1.0 + rank / 10.0) if prior is None else prior[rank],
                    "exact": exact,
                    "name_cover": name_cover,
                    "query_cover": query_cover,
                    "kind": kind,
                    "brevity": 1.0 / max(len(split_identifier(decl.name)), 1),
                    "deprecated": 1.0 if decl.deprecated else 0.0,
                }
            )
        return out

    def rerank(
        self, query: str, candidates: Sequence[Declaration], scores: Sequence[float] | None = None
    ) -> list[tuple[int, float]]:
        """(position in `candidates`, score) pairs sorted by score descending, ties by original position."""
        w = asdict(self.weights)
        scored = [
            (i, sum(w[name] * value for name, value in feats.items()))
            for i, feats in enumerate(self.features(query, candidates, scores))
        ]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored


class CrossEncoderReranker:
    """Pointwise reranking with a sentence-transformers cross-encoder from a local directory (never downloads).

    Each (query, document) pair is scored by the model; the document is `semantic_text(decl)` followed by the
    Lean signature. `path` must be a saved cross-encoder (`config.json`, weights, tokenizer); it is opened with
    `local_files_only=True` on first use. Ties keep the retriever's order.
    """

    def __init__(
        self, path: str | Path, *, batch_size: int = 32, max_length: int | None = 512, device: str = "cpu"
    ) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise InputError("not a local cross-encoder directory (no config.json); nothing is downloaded", path=path)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self.path, self.batch_size, self.max_length, self.device = path, batch_size, max_length, device
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            st = require("sentence_transformers", "the cross-encoder reranker", extra="semantic", distribution=_DIST)
            self._model = st.CrossEncoder(
                str(self.path), device=self.device, local_files_only=True, max_length=self.max_length
            )
        return self._model

    @property
    def id(self) -> str:
        return f"cross-encoder:path={self.path.resolve()}:max_length={self.max_length}"

    @staticmethod
    def document(decl: Declaration) -> str:
        """The text the cross-encoder reads for a candidate."""
        return f"{semantic_text(decl)}\n{decl.signature}"

    def rerank(
        self, query: str, candidates: Sequence[Declaration], scores: Sequence[float] | None = None
    ) -> list[tuple[int, float]]:
        """(position, score) best first; on a scoring failure, the retriever's order with `(n - i) / n`.

        The retriever's `scores` are not used: the model judges each pair on its own.
        """
        if not candidates:
            return []
        model = self._load()  # a missing extra is the user's to fix: not swallowed by the fallback below
        try:
            raw = model.predict(
                [(query, self.document(d)) for d in candidates], batch_size=self.batch_size, show_progress_bar=False
            )
            scores = [float(x) for x in list(raw)]
            if len(scores) != len(candidates):
                raise RuntimeError(f"{len(scores)} scores for {len(candidates)} candidates")
        except Exception as exc:  # upstream behaviour: any reranker failure keeps the retriever order
            logger.warning("cross-encoder failed (%s); keeping the retriever's order", exc)
            n = len(candidates)
            return [(i, (n - i) / n) for i in range(n)]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(i, scores[i]) for i in order]
