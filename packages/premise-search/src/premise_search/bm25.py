"""BM25 (Okapi) as a sparse document-by-term weight matrix: `rank_bm25.BM25Okapi` scores, without its Python loop.

`rank_bm25.BM25Okapi.get_scores` loops over every document for every query term (about 0.5 s per query on 50k
documents). BM25 is a sum over query terms of per-(document, term) weights that do not depend on the query:

    w[d, t] = idf[t] * tf[d, t] * (k1 + 1) / (tf[d, t] + k1 * (1 - b + b * len[d] / avgdl))

so we precompute `W: [n_docs, n_terms]` once (scipy CSC, one column per term) and score a query as
`W[:, terms] @ counts`, where `counts` is how often each distinct term occurs in the query (rank_bm25 adds a
repeated query term once per occurrence). The idf is rank_bm25's: `ln(N - df + 0.5) - ln(df + 0.5)`, and every
negative idf (a term in more than half the documents) is replaced by `epsilon * mean(idf)` where the mean runs
over all terms *before* the replacement. Unknown query terms score 0. Scores equal rank_bm25's to ~1e-12.

rank_bm25 quirk kept on purpose: a term in exactly half of the documents has idf 0, so in a 2-document corpus
every term scores 0 (`BM25Okapi([["group", "order"], ["ring", "ideal"]]).get_scores(["group"]) == [0, 0]`).
One deliberate difference: where rank_bm25 computes 0/0 = NaN (an empty document with `b = 1`, or `k1 = 0` for
a document without the term) we give 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
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
    """BM25 Okapi over pre-tokenized documents, scored with a sparse matrix product.

    Attributes (fitted):
        vocabulary_: term -> column index.
        idf_: `[n_terms]` idf after the epsilon floor.
        weights_: `[n_docs, n_terms]` CSC matrix of per-(document, term) BM25 weights.
        doc_len_: `[n_docs]` token counts; avgdl_: their mean.
    """

    def __init__(self, config: BM25Config | None = None) -> None:
        self.config = config if config is not None else BM25Config()
        self.vocabulary_: dict[str, int] = {}
        self.idf_ = np.zeros(0)
        self.weights_: sp.csc_matrix = sp.csc_matrix((0, 0))
        self.doc_len_ = np.zeros(0, dtype=np.int64)
        self.avgdl_ = 0.0
        self.average_idf_ = 0.0

    @property
    def n_docs(self) -> int:
        return int(self.weights_.shape[0])

    def fit(self, corpus: Sequence[Sequence[str]]) -> SparseBM25:
        """Index `corpus` (a list of token lists, one per document). Needs >= 1 document and >= 1 token overall."""
        if len(corpus) == 0:
            raise InputError("BM25 needs at least one document")
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        doc_len = np.empty(len(corpus), dtype=np.int64)
        for d, doc in enumerate(corpus):
            if isinstance(doc, str):
                raise InputError(f"document {d}: expected a list of tokens, got a string (tokenize first)")
            doc_len[d] = len(doc)
            for token in doc:
                col = vocab.get(token)
                if col is None:
                    col = vocab[token] = len(vocab)
                rows.append(d)
                cols.append(col)
        n_docs, n_terms = len(corpus), len(vocab)
        if n_terms == 0:
            raise InputError("BM25 needs at least one token in the corpus")
        tf = sp.coo_matrix((np.ones(len(rows)), (np.asarray(rows), np.asarray(cols))), shape=(n_docs, n_terms))
        tf = tf.tocsr()
        tf.sum_duplicates()
        df = np.diff(tf.tocsc().indptr).astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        self.average_idf_ = _average_idf(idf)
        idf = np.where(idf < 0, self.config.epsilon * self.average_idf_, idf)
        self.avgdl_ = float(doc_len.sum() / n_docs)
        self.vocabulary_, self.idf_, self.doc_len_ = vocab, idf, doc_len
        self.weights_ = self._weights(tf)
        logger.debug("SparseBM25: %d docs, %d terms, %d nonzeros", n_docs, n_terms, self.weights_.nnz)
        return self

    def _weights(self, tf: sp.csr_matrix) -> sp.csc_matrix:
        k1, b = self.config.k1, self.config.b
        # rank_bm25's exact operation order: q_freq * (k1 + 1) / (q_freq + k1 * (1 - b + b * doc_len / avgdl))
        norm = k1 * (1 - b + b * self.doc_len_ / self.avgdl_) if self.avgdl_ > 0 else np.full(tf.shape[0], k1 * 1.0)
        row_of = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        values = tf.data * (k1 + 1) / (tf.data + norm[row_of])
        values = self.idf_[tf.indices] * values
        weights = sp.csr_matrix((values, tf.indices.copy(), tf.indptr.copy()), shape=tf.shape)
        return weights.tocsc()

    def query_vector(self, query: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(term columns `[n_known]`, their counts in the query `[n_known]`); unknown terms are dropped."""
        counts: dict[int, int] = {}
        for token in query:
            col = self.vocabulary_.get(token)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        return cols, np.fromiter(counts.values(), dtype=np.float64, count=len(counts))

    def get_scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the token list `query`: `[n_docs]` float64, as rank_bm25's."""
        if isinstance(query, str):
            raise InputError("query: expected a list of tokens, got a string (tokenize first)")
        cols, counts = self.query_vector(query)
        if cols.size == 0:
            return np.zeros(self.n_docs)
        return np.asarray(self.weights_[:, cols] @ counts).ravel()

    def get_batch_scores(self, queries: Sequence[Sequence[str]]) -> np.ndarray:
        """Scores of several queries at once: `[n_queries, n_docs]` (one sparse product)."""
        n_terms = len(self.vocabulary_)
        rows, cols, vals = [], [], []
        for i, query in enumerate(queries):
            c, v = self.query_vector(query)
            rows.extend([i] * len(c))
            cols.extend(c.tolist())
            vals.extend(v.tolist())
        q = sp.csr_matrix((vals, (rows, cols)), shape=(len(queries), n_terms))
        return np.asarray((q @ self.weights_.T).todense())

    def top_k(self, query: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
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
            "weights": self.weights_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SparseBM25:
        model = cls(BM25Config.from_json(state["config"]))
        model.vocabulary_ = {t: i for i, t in enumerate(state["terms"])}
        model.avgdl_ = float(state["avgdl"])
        model.average_idf_ = float(state["average_idf"])
        model.idf_ = np.asarray(state["idf"], dtype=np.float64)
        model.doc_len_ = np.asarray(state["doc_len"], dtype=np.int64)
        model.weights_ = sp.csc_matrix(state["weights"])
        if model.weights_.shape[1] != len(model.vocabulary_) or model.idf_.shape[0] != len(model.vocabulary_):
            raise InputError("BM25 state: the weight matrix, idf and vocabulary sizes do not match")
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
