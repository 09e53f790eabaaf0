"""BM25 (Okapi) as per-term posting lists of precomputed weights: `rank_bm25.BM25Okapi` scores, without its loop.

`rank_bm25.BM25Okapi.get_scores` loops over every document for every query term (about 0.5 s per query on 50k
documents). BM25 is a sum over query terms of per-(document, term) weights that do not depend on the query:

    w[d, t] = idf[t] * tf[d, t] * (k1 + 1) / (tf[d, t] + k1 * (1 - b + b * len[d] / avgdl))

so we precompute `W: [n_docs, n_terms]` once (compressed sparse columns: one posting list per term) and score a
query as `W[:, terms] @ counts`, where `counts` is how often each distinct term occurs in the query (rank_bm25
adds a repeated query term once per occurrence), or the weight of each term for a weighted query. The idf is
rank_bm25's: `ln(N - df + 0.5) - ln(df + 0.5)`, and every negative idf (a term in more than half the documents)
is replaced by `epsilon * mean(idf)` where the mean runs over all terms *before* the replacement. Unknown query
terms score 0. Scores equal rank_bm25's to ~1e-12.

rank_bm25 quirk kept on purpose: a term in exactly half of the documents has idf 0, so in a 2-document corpus
every term scores 0 (`BM25Okapi([["group", "order"], ["ring", "ideal"]]).get_scores(["group"]) == [0, 0]`).
One deliberate difference: where rank_bm25 computes 0/0 = NaN (an empty document with `b = 1`, or `k1 = 0` for
a document without the term) we give 0.
"""

from __future__ import annotations

import json
import logging
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from repro_core.config import checked_fields
from repro_core.errors import ConfigError, InputError

__all__ = ["BM25Config", "SparseBM25", "reference_scores", "top_k_scores"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BM25Config:
    """BM25 Okapi parameters, with rank_bm25's defaults.

    Attributes:
        k1: term-frequency saturation (> 0 ... usual 1.2-2.0).
        b: length normalisation in [0, 1].
        epsilon: floor factor for negative idf: such terms get `epsilon * mean idf`.
    """

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def __post_init__(self) -> None:
        if not (isinstance(self.k1, int | float) and self.k1 >= 0):
            raise ConfigError(f"BM25Config.k1: must be a number >= 0, got {self.k1!r}")
        if not (isinstance(self.b, int | float) and 0 <= self.b <= 1):
            raise ConfigError(f"BM25Config.b: must lie in [0, 1], got {self.b!r}")
        if not isinstance(self.epsilon, int | float):
            raise ConfigError(f"BM25Config.epsilon: must be a number, got {self.epsilon!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> BM25Config:
        data = json.loads(text) if isinstance(text, str) else text
        return cls(**checked_fields(cls, data, "BM25Config"))


class SparseBM25:
    """BM25 Okapi over pre-tokenized documents, scored from per-term posting lists.

    The fitted model is three arrays in compressed-sparse-column form (one column per term): `indptr_`
    (`[n_terms + 1]` int64), `doc_ids_` (`[nnz]` int32, ascending within a term) and `postings_` (`[nnz]` BM25
    weights). A query adds each of its terms' postings into a score vector, so the cost is the postings of the
    query's terms, not the corpus size, and the arrays can be memory-mapped straight from an index directory.
    `dtype=np.float64` (default) gives rank_bm25's scores to ~1e-12; the search engine stores float32 postings,
    which halves the index and changes scores by about 1e-7 relatively.

    Attributes (fitted):
        vocabulary_: term -> column index.
        idf_: `[n_terms]` idf after the epsilon floor.
        doc_len_: `[n_docs]` token counts; avgdl_: their mean.
    """

    def __init__(self, config: BM25Config | None = None, *, dtype: Any = np.float64) -> None:
        self.config = config if config is not None else BM25Config()
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ConfigError(f"dtype: expected float32 or float64, got {self.dtype}")
        self.vocabulary_: dict[str, int] = {}
        self.idf_ = np.zeros(0)
        self.indptr_ = np.zeros(1, dtype=np.int64)
        self.doc_ids_ = np.zeros(0, dtype=np.int32)
        self.postings_ = np.zeros(0, dtype=self.dtype)
        self.doc_len_ = np.zeros(0, dtype=np.int64)
        self.avgdl_ = 0.0
        self.average_idf_ = 0.0

    @property
    def n_docs(self) -> int:
        return int(self.doc_len_.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.doc_ids_.shape[0])

    @property
    def weights_(self) -> sp.csc_matrix:
        """The `[n_docs, n_terms]` weight matrix as a scipy CSC matrix (a view of the posting arrays)."""
        return sp.csc_matrix((self.postings_, self.doc_ids_, self.indptr_), shape=(self.n_docs, len(self.vocabulary_)))

    def fit(self, corpus: Iterable[Sequence[str]]) -> SparseBM25:
        """Index `corpus` (token lists, one per document; any iterable, consumed once).

        Needs >= 1 document and >= 1 token overall. Memory is one (term, count) pair per distinct term of each
        document, never a token list per document, so a generator of token lists indexes a large corpus.
        """
        vocab: dict[str, int] = {}
        cols = array("i")
        counts = array("i")
        lengths = array("q")
        distinct = array("q")
        for d, doc in enumerate(corpus):
            if isinstance(doc, str):
                raise InputError(f"document {d}: expected a list of tokens, got a string (tokenize first)")
            lengths.append(len(doc))
            tf = Counter(doc)
            distinct.append(len(tf))
            for token, count in tf.items():
                col = vocab.get(token)
                if col is None:
                    col = vocab[token] = len(vocab)
                cols.append(col)
                counts.append(count)
        n_docs, n_terms = len(lengths), len(vocab)
        if n_docs == 0:
            raise InputError("BM25 needs at least one document")
        if n_terms == 0:
            raise InputError("BM25 needs at least one token in the corpus")
        doc_len = np.frombuffer(lengths, dtype=np.int64).copy()
        col_arr = np.frombuffer(cols, dtype=np.int32)
        row_arr = np.repeat(np.arange(n_docs, dtype=np.int32), np.frombuffer(distinct, dtype=np.int64))
        order = np.argsort(col_arr, kind="stable")  # rows stay ascending within each term
        df = np.bincount(col_arr, minlength=n_terms).astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        self.average_idf_ = _average_idf(idf)
        idf = np.where(idf < 0, self.config.epsilon * self.average_idf_, idf)
        self.avgdl_ = float(doc_len.sum() / n_docs)
        self.vocabulary_, self.idf_, self.doc_len_ = vocab, idf, doc_len
        self.indptr_ = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df.astype(np.int64), out=self.indptr_[1:])
        self.doc_ids_ = row_arr[order]
        self.postings_ = self._weights(np.frombuffer(counts, dtype=np.int32)[order], self.doc_ids_, col_arr[order])
        logger.debug("SparseBM25: %d docs, %d terms, %d postings", n_docs, n_terms, self.nnz)
        return self

    def _weights(self, tf: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        k1, b = self.config.k1, self.config.b
        # rank_bm25's exact operation order: q_freq * (k1 + 1) / (q_freq + k1 * (1 - b + b * doc_len / avgdl))
        norm = k1 * (1 - b + b * self.doc_len_ / self.avgdl_) if self.avgdl_ > 0 else np.full(self.n_docs, k1 * 1.0)
        tf = tf.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = tf * (k1 + 1) / (tf + norm[rows])
        values = np.nan_to_num(self.idf_[cols] * values, nan=0.0)  # 0/0 (k1 = 0 or an empty doc with b = 1)
        return values.astype(self.dtype)

    def query_vector(self, query: Sequence[str] | Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(term columns `[n_known]`, their weights `[n_known]`); unknown terms are dropped.

        A token list counts each occurrence (rank_bm25 adds a repeated query term once per occurrence); a
        mapping gives each term its weight (`LeanTokenizer.query_terms`).
        """
        weights: dict[int, float] = {}
        items = query.items() if isinstance(query, Mapping) else ((token, 1.0) for token in query)
        for token, weight in items:
            col = self.vocabulary_.get(token)
            if col is not None:
                weights[col] = weights.get(col, 0.0) + float(weight)
        cols = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
        return cols, np.fromiter(weights.values(), dtype=np.float64, count=len(weights))

    def get_scores(self, query: Sequence[str] | Mapping[str, float]) -> np.ndarray:
        """BM25 score of every document for `query` (token list or term -> weight): `[n_docs]` float64."""
        if isinstance(query, str):
            raise InputError("query: expected a list of tokens, got a string (tokenize first)")
        scores = np.zeros(self.n_docs)
        cols, weights = self.query_vector(query)
        for col, weight in zip(cols.tolist(), weights.tolist(), strict=True):
            start, stop = self.indptr_[col], self.indptr_[col + 1]
            # doc ids are unique within a term, so a fancy-index add is exact
            scores[self.doc_ids_[start:stop]] += weight * self.postings_[start:stop]
        return scores

    def get_batch_scores(self, queries: Sequence[Sequence[str] | Mapping[str, float]]) -> np.ndarray:
        """Scores of several queries at once: `[n_queries, n_docs]`."""
        out = np.zeros((len(queries), self.n_docs))
        for i, query in enumerate(queries):
            out[i] = self.get_scores(query)
        return out

    def top_k(self, query: Sequence[str] | Mapping[str, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best documents: (indices `[k']`, scores `[k']`), best first, ties by lower index; k' = min(k, n)."""
        scores = self.get_scores(query)
        return top_k_scores(scores, k)

    # -- persistence helpers (used by premise_search.index) --------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Arrays and JSON-ready metadata that rebuild this scorer without refitting (no pickle)."""
        terms = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)
        return {
            "config": asdict(self.config),
            "terms": terms,
            "avgdl": self.avgdl_,
            "average_idf": self.average_idf_,
            "idf": self.idf_,
            "doc_len": self.doc_len_,
            "indptr": self.indptr_,
            "doc_ids": self.doc_ids_,
            "postings": self.postings_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SparseBM25:
        """A scorer from `state()`'s arrays; arrays are used as given (memory-mapped ones stay mapped)."""
        postings = np.asanyarray(state["postings"])
        model = cls(BM25Config.from_json(state["config"]), dtype=postings.dtype)
        model.vocabulary_ = {t: i for i, t in enumerate(state["terms"])}
        model.avgdl_ = float(state["avgdl"])
        model.average_idf_ = float(state["average_idf"])
        model.idf_ = np.asarray(state["idf"], dtype=np.float64)
        model.doc_len_ = np.asarray(state["doc_len"], dtype=np.int64)
        model.indptr_ = np.asanyarray(state["indptr"])
        model.doc_ids_ = np.asanyarray(state["doc_ids"])
        model.postings_ = postings
        n_terms = len(model.vocabulary_)
        if model.idf_.shape[0] != n_terms or model.indptr_.shape[0] != n_terms + 1:
            raise InputError("BM25 state: the idf, column pointers and vocabulary sizes do not match")
        if model.doc_ids_.shape != postings.shape or int(model.indptr_[-1]) != postings.shape[0]:
            raise InputError("BM25 state: the posting arrays do not match the column pointers")
        return model


def _average_idf(idf: np.ndarray) -> float:
    """rank_bm25's mean idf: a left-to-right Python sum over terms in first-seen order, divided by their number."""
    total = 0.0
    for value in idf.tolist():
        total += value
    return total / len(idf)


def top_k_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the `k` largest `scores: [n]`, best first; equal scores keep the lower index first."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    n = scores.shape[0]
    k = min(int(k), n)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        candidates = np.flatnonzero(scores >= threshold)  # every tie at the cut, so the lower index wins
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    best = candidates[order]
    return best, scores[best]


def reference_scores(
    corpus: Sequence[Sequence[str]], query: Sequence[str], config: BM25Config | None = None
) -> np.ndarray:
    """`rank_bm25.BM25Okapi(corpus, k1, b, epsilon).get_scores(query)`: the reference our scores must equal."""
    from rank_bm25 import BM25Okapi

    config = config if config is not None else BM25Config()
    model = BM25Okapi([list(doc) for doc in corpus], k1=config.k1, b=config.b, epsilon=config.epsilon)
    return np.asarray(model.get_scores(list(query)), dtype=np.float64)
