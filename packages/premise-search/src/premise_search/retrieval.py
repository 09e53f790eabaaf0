"""Standard-mode search: BM25, name, dense and semantic channels, fusion, then the reranker.

Channels (each a ranking of the whole corpus):

- `bm25`: BM25 Okapi over the declaration text (name, module, signature, docstring, informal text), queried
  with `LeanTokenizer.query_terms` (the typed words, plus the Mathlib name words of their English);
- `name`: BM25 over the declaration name alone (split on dots, underscores and camelCase), the "name channel"
  LeanExplore also uses: a query that spells a name finds it even in a long signature-heavy corpus;
- `dense`: cosine similarity of static embeddings (`premise_search.static`: all-MiniLM-L6-v2 distilled over the
  corpus vocabulary, shipped in the wheel; a document is the BM25-weighted mean of its tokens' vectors), exact
  top-k via `repro_core.kernels.topk_similarity`. It needs no model at run time and embeds all of Mathlib in
  seconds. `IndexConfig(dense="none")` leaves it out;
- `semantic`: cosine similarity of a `TextEmbedder` over `semantic_text`: by default all-MiniLM-L6-v2
  (`premise_search.minilm`), whose vectors of all of Mathlib ship in the wheel. The default index has this channel
  and not `dense`; an index with only one of the two vector channels answers both modes with it.

`hybrid` fuses the channels' top `candidates` (default 100) with one of two rules:

- `"zscore"`: each channel's scores are standardised over its own candidate list (`(s - mean) / std`), a
  candidate missing from a channel is scored exactly in it (its real BM25 score or cosine), each z is bounded
  below by `z_floor`, and the fused score is `Σ_c weight_c · z_c(d)`. Score fusion keeps *how much* better a
  channel's first hit is, which rank fusion throws away; the floor keeps one channel from vetoing what another
  ranks first.
- `"rrf"`: reciprocal rank fusion (Cormack, Clarke & Büttcher 2009), `Σ_c weight_c / (rrf_k + rank_c(d))`,
  rank 1-based, rrf_k = 60.

Ties go to the lower corpus index. The rule, weights and floor (`LEXICAL_FUSION`/`LEXICAL_CHANNEL_WEIGHTS`/
`LEXICAL_Z_FLOOR` without a semantic channel, the `SEMANTIC_` ones with one) were chosen on the MathlibQR tuning rows
(those outside the fair slice) over all of Mathlib (`benchmarks/bench_quality.py --grid`; see the README).
The reranker (on by default, as in the command line and the server; `rerank=False` keeps the retriever's order)
re-orders the top `rerank_depth` of the chosen mode with a `Reranker` (the deterministic `FeatureReranker` by
default), and puts first every declaration the whole query names (`SearchEngine.named`: its full Lean name, or a
name its docstring gives it in bold as its own), wherever the retriever ranked it, then the declarations that are
only versions of that result ("A special case of the **binomial theorem**"); the rest keep their order below.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from premise_search.bm25 import BM25Config, SparseBM25, top_k_scores
from premise_search.corpus import Declaration, corpus_sha256
from premise_search.embed import (
    TextEmbedder,
    load_semantic_embedder,
    resolve_semantic,
    semantic_text,
    validate_semantic,
)
from premise_search.informalize import Informalizer
from premise_search.naming import is_result_name, own_titles, result_titles
from premise_search.rerank import FeatureReranker, Reranker
from premise_search.static import StaticModel
from premise_search.tokenize import LeanTokenizer, TokenizerConfig
from repro_core.errors import ConfigError, InputError

__all__ = [
    "DENSE_MODELS",
    "FUSE_BATCH",
    "FUSIONS",
    "INFORMAL_SOURCES",
    "LEXICAL_CHANNEL_WEIGHTS",
    "LEXICAL_FUSION",
    "LEXICAL_Z_FLOOR",
    "MODES",
    "SEMANTIC_CHANNEL_WEIGHTS",
    "SEMANTIC_FUSION",
    "SEMANTIC_Z_FLOOR",
    "BuildProgress",
    "Hit",
    "IndexConfig",
    "SearchEngine",
    "default_index_config",
    "document_text",
    "fill_informal",
    "named_results",
    "rrf_fuse",
    "zscore_fuse",
]

logger = logging.getLogger(__name__)

Mode = Literal["bm25", "name", "dense", "semantic", "hybrid"]
#: Search modes (`name` is the name channel alone).
MODES: tuple[str, ...] = ("bm25", "name", "dense", "semantic", "hybrid")
#: Where `IndexConfig.informal` takes informal text from for declarations without it.
INFORMAL_SOURCES: tuple[str, ...] = ("none", "offline")
#: Models of the `dense` channel: the shipped static model, or no dense channel.
DENSE_MODELS: tuple[str, ...] = ("static", "none")
#: Hybrid fusion rules.
FUSIONS: tuple[str, ...] = ("zscore", "rrf")
#: Fusion rule, weights and z floor of the default channels: the best mean reciprocal rank of a 384-point grid
#: (rule: z-score with each floor in `bench_quality.Z_FLOORS`, or rrf x name and dense weights x query-expansion
#: weight) on the MathlibQR tuning rows over all of Mathlib (`benchmarks/bench_quality.py --grid`; README, "How
#: the defaults were chosen"). The floor bounds how far below its top list's mean a channel can push a candidate,
#: in standard deviations (`zscore_fuse`); -inf is no floor.
LEXICAL_FUSION = "zscore"
LEXICAL_CHANNEL_WEIGHTS = {"bm25": 1.0, "name": 0.5, "dense": 0.25}
LEXICAL_Z_FLOOR = -np.inf
#: With the semantic channel (the default: MiniLM, vectors of Mathlib shipped): the best MRR of a 480-point grid
#: (the same rules x name x semantic x query-expansion weight) on the same rows. In a 144-point grid with the
#: static dense channel as a fourth channel it got weight 0, so the default index leaves it out
#: (`default_index_config`).
SEMANTIC_FUSION = "zscore"
SEMANTIC_CHANNEL_WEIGHTS = {"bm25": 1.0, "name": 0.25, "dense": 0.0, "semantic": 1.0}
SEMANTIC_Z_FLOOR = -2.5
#: Documents embedded per step when building the dense channel (bounds the float32 temporaries).
_EMBED_CHUNK = 32_768
#: Queries fused together in `search_batch`: bounds the per-query score vectors held at once.
FUSE_BATCH = 16

#: `on_progress(stage, done, total)`: called while an index is built, e.g. to drive a progress bar.
BuildProgress = Callable[[str, int, int], None]
#: One query's result in one channel: top ids, their scores, and an exact-score lookup for any rows.
_Ranking = tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray] | None]


def document_text(decl: Declaration) -> str:
    """The text the `bm25` and `dense` channels index: name, module, signature, docstring, informal text."""
    parts = [decl.name, decl.module, decl.signature]
    for extra in (decl.docstring, decl.informal_name, decl.informal_description):
        if extra:
            parts.append(extra)
    return "\n".join(parts)


def named_results(corpus: Sequence[Declaration]) -> dict[str, list[int]]:
    """Each name the corpus's docstrings give a result in bold (`naming.result_titles`, kept when
    `naming.is_result_name`) -> the rows carrying it."""
    out: dict[str, list[int]] = {}
    for i, decl in enumerate(corpus):
        for title in result_titles(decl.docstring):
            if is_result_name(title):
                out.setdefault(title, []).append(i)
    return out


def fill_informal(corpus: Sequence[Declaration], source: str = "offline") -> list[Declaration]:
    """`corpus` with each missing `informal_name` / `informal_description` filled from `source` (input order).

    Why: 73% of the declarations have no docstring, so the channels see only a name and a signature; the offline
    informaliser spells the name out in words and names the dependencies, which BM25 and the embedders can match
    against English queries (README, "Informalisation"). Text the corpus already has is kept;
    rows the informaliser skips (internal names, duplicates, other kinds) are returned unchanged. Deterministic.
    """
    if source not in INFORMAL_SOURCES:
        raise ConfigError(f"informal: expected one of {INFORMAL_SOURCES}, got {source!r}")
    if source == "none" or all(d.informal_name and d.informal_description for d in corpus):
        return list(corpus)
    filled = Informalizer().run(corpus).declarations  # rows with a description are kept and lend it to dependents
    return [
        old
        if old.informal_name and old.informal_description
        else replace(
            old,
            informal_name=old.informal_name or new.informal_name,
            informal_description=old.informal_description or new.informal_description,
        )
        for old, new in zip(corpus, filled, strict=True)
    ]


@dataclass(frozen=True)
class IndexConfig:
    """Everything that determines an index (a change means a rebuild), JSON round-trip.

    Attributes:
        tokenizer: `LeanTokenizer` options.
        bm25: BM25 parameters, shared by the text and name channels.
        dense: the `dense` channel's model: `static` (default: the static model shipped in the package,
            `premise_search.static`) or `none` (no dense channel).
        semantic: the semantic channel's model: `none` (the dataclass default: no model weights), `minilm` (what
            `default_index_config()` gives), `auto` (`minilm` when its packages are installed, else `none`),
            `wordllama`, or `st:<directory>` for a local sentence-transformers model. `build` stores the
            resolved name.
        informal: informal text for declarations that have none: `offline` (default) fills each missing
            `informal_name` / `informal_description` with `OfflineInformalizer` output before any channel's text
            is built (rows with their own informal text keep it); `none` indexes the corpus as given.
    """

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    dense: str = "static"
    semantic: str = "none"
    informal: str = "offline"

    def __post_init__(self) -> None:
        for key, kind in (("tokenizer", TokenizerConfig), ("bm25", BM25Config)):
            if not isinstance(getattr(self, key), kind):
                raise ConfigError(f"IndexConfig.{key}: expected a {kind.__name__}")
        if self.dense not in DENSE_MODELS:
            raise ConfigError(f"IndexConfig.dense: expected one of {DENSE_MODELS}, got {self.dense!r}")
        validate_semantic(self.semantic)
        if self.informal not in INFORMAL_SOURCES:
            raise ConfigError(f"IndexConfig.informal: expected one of {INFORMAL_SOURCES}, got {self.informal!r}")

    def resolved(self) -> IndexConfig:
        """This config with `semantic="auto"` replaced by what it means in this environment."""
        return replace(self, semantic=resolve_semantic(self.semantic))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": asdict(self.tokenizer),
            "bm25": asdict(self.bm25),
            "dense": self.dense,
            "semantic": self.semantic,
            "informal": self.informal,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> IndexConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        unknown = set(data) - {"tokenizer", "bm25", "dense", "semantic", "informal"}
        if unknown:
            raise ConfigError(f"IndexConfig: unknown field(s) {sorted(unknown)}")
        return cls(
            tokenizer=TokenizerConfig.from_json(data.get("tokenizer", {})),
            bm25=BM25Config.from_json(data.get("bm25", {})),
            dense=data.get("dense", cls.dense),
            semantic=data.get("semantic", cls.semantic),
            informal=data.get("informal", cls.informal),
        )


def default_index_config() -> IndexConfig:
    """The config used when none is given: the MiniLM semantic channel, BM25 and the name channel.

    `$PREMISE_SEARCH_SEMANTIC` (`none`, `auto`, `minilm`, `wordllama`, `st:<dir>`) overrides the semantic model:
    `none` gives `IndexConfig()`, the lexical channels with the static dense channel (no model weights at all).
    The static dense channel is left out beside MiniLM: it got weight 0 in the fusion grid (README).
    """
    value = os.environ.get("PREMISE_SEARCH_SEMANTIC", "").strip() or "minilm"
    try:
        return IndexConfig(semantic=value, dense="none" if value == "minilm" else "static")
    except ConfigError as exc:
        raise ConfigError(f"$PREMISE_SEARCH_SEMANTIC: {exc}") from None


@dataclass(frozen=True)
class Hit:
    """One search result: the corpus row `index`, its declaration, the score of the mode that ranked it."""

    index: int
    score: float
    declaration: Declaration

    @property
    def name(self) -> str:
        return self.declaration.name

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, **self.declaration.to_dict("native")}


def rrf_fuse(
    rankings: Sequence[Sequence[int]], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists: (id, Σ_c w_c / (k + rank_c)) best first, ties by lower id.

    Ranks are 1-based; an id absent from a ranking gets nothing from it.
    """
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"weights: expected {len(rankings)} values, got {len(weights)}")
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[int(item)] = fused.get(int(item), 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


#: Exact scores of any corpus rows in one channel: `lookup(ids [m]) -> scores [m]` (for `zscore_fuse`).
ScoreLookup = Callable[[np.ndarray], np.ndarray]


def zscore_fuse(
    rankings: Sequence[tuple[Sequence[int], Sequence[float]]],
    *,
    weights: Sequence[float] | None = None,
    lookups: Sequence[ScoreLookup | None] | None = None,
    z_floor: float = -np.inf,
) -> list[tuple[int, float]]:
    """Weighted sum of per-channel standardised scores: (id, Σ_c w_c · z_c(id)) best first, ties by lower id.

    `rankings` holds one (ids, scores) pair per channel, its candidate list. Scores are standardised with the
    mean and standard deviation of that list (a constant list gives 0). A candidate another channel listed but
    this one did not is scored exactly when the channel has a `lookup` (its real score, standardised the same
    way), else it gets the channel's lowest listed z. Why exact: the lowest listed z treats "rank 101" like
    "rank 100 000", so a declaration that is 9th by BM25 but just outside the dense top list fell behind ones
    that were mediocre everywhere; with its real scores it keeps its place (README, "Fusion").
    `z_floor` bounds each z from below (default: no bound). Why: an exact score far below a channel's top list
    is a veto that no other channel's first place outweighs; BM25 and MiniLM each put a fifth of the tuning rows'
    targets 2.5 or more standard deviations below their top 100 (down to -6 and -8), typically a paraphrase that
    one of them misses. With the floor a channel can count against a candidate, but only so much.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    lookups = [None] * len(rankings) if lookups is None else list(lookups)
    if len(weights) != len(rankings) or len(lookups) != len(rankings):
        raise ValueError(f"weights and lookups: expected {len(rankings)} values each")
    channels = []
    for (ids, scores), weight, lookup in zip(rankings, weights, lookups, strict=True):
        values = np.asarray(scores, dtype=np.float64)
        if len(ids) != values.size:
            raise ValueError("rankings: each channel needs as many scores as ids")
        if values.size == 0 or weight == 0:
            continue
        channels.append((np.asarray(ids, dtype=np.int64), values, float(weight), lookup))
    if not channels:
        return []
    candidates = np.unique(np.concatenate([ids for ids, _, _, _ in channels]))
    fused = np.zeros(candidates.size)
    for ids, values, weight, lookup in channels:
        mean, std = values.mean(), values.std()
        if std == 0:
            continue  # a constant list says nothing about its candidates: z = 0 for all
        if lookup is not None:
            raw = np.asarray(lookup(candidates), dtype=np.float64)
        else:
            listed = dict(zip(ids.tolist(), values.tolist(), strict=True))
            raw = np.array([listed.get(i, values.min()) for i in candidates.tolist()])
        z = (raw - mean) / std
        fused += weight * np.maximum(z, z_floor)
    order = np.lexsort((candidates, -fused))
    return [(int(candidates[i]), float(fused[i])) for i in order]


class SearchEngine:
    """Search a corpus of `Declaration`s in standard mode (see the module docstring).

    Build with `SearchEngine.build(corpus)`, or load a saved index with `premise_search.index.load_index`
    (or `open_default_index()` for all of Mathlib). `corpus` is any sequence of declarations: a list, or the
    lazily decoded `DocStore` of a loaded index. `corpus_info` describes where the corpus came from (library,
    commit, size); it is shown by `/health`, `index info` and the search page.
    """

    def __init__(
        self,
        corpus: Sequence[Declaration],
        config: IndexConfig,
        text_bm25: SparseBM25,
        name_bm25: SparseBM25,
        *,
        dense_model: StaticModel | None = None,
        dense_vectors: np.ndarray | None = None,
        semantic: TextEmbedder | None = None,
        semantic_embeddings: np.ndarray | None = None,
        reranker: Reranker | None = None,
        rrf_k: float = 60.0,
        candidates: int = 100,
        channel_weights: dict[str, float] | None = None,
        rerank_depth: int = 20,
        fusion: str | None = None,
        z_floor: float | None = None,
        source_sha256: str | None = None,
        corpus_info: dict[str, Any] | None = None,
        name_index: dict[str, int] | None = None,
        result_names: dict[str, list[int]] | None = None,
    ) -> None:
        n = len(corpus)
        if not (text_bm25.n_docs == name_bm25.n_docs == n):
            raise InputError(f"index parts disagree on the corpus size ({n} declarations)")
        if (dense_model is None) != (dense_vectors is None):
            raise ConfigError("dense_model and dense_vectors: give both or neither")
        if dense_vectors is not None and dense_vectors.shape != (n, dense_model.dim):  # type: ignore[union-attr]
            raise InputError(f"dense vectors have shape {dense_vectors.shape} for {n} declarations")
        if (semantic is None) != (semantic_embeddings is None):
            raise ConfigError("semantic and semantic_embeddings: give both or neither")
        if semantic_embeddings is not None and semantic_embeddings.shape[0] != n:
            raise InputError(f"semantic embeddings have {semantic_embeddings.shape[0]} rows for {n} declarations")
        if candidates < 1 or rerank_depth < 1:
            raise ConfigError("candidates and rerank_depth must be >= 1")
        if fusion is None:
            fusion = SEMANTIC_FUSION if semantic is not None else LEXICAL_FUSION
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion: expected one of {FUSIONS}, got {fusion!r}")
        self.corpus = corpus
        self.config = config
        self.tokenizer = LeanTokenizer(config.tokenizer)
        self.text_bm25, self.name_bm25 = text_bm25, name_bm25
        self.dense_model, self.dense_vectors = dense_model, dense_vectors
        self.reranker: Reranker = reranker if reranker is not None else FeatureReranker(tokenizer=self.tokenizer)
        self.rrf_k, self.candidates, self.rerank_depth = float(rrf_k), int(candidates), int(rerank_depth)
        self.semantic, self.semantic_embeddings = semantic, semantic_embeddings
        self.fusion = fusion
        if z_floor is None:
            z_floor = SEMANTIC_Z_FLOOR if semantic is not None else LEXICAL_Z_FLOOR
        if not z_floor <= 0:
            raise ConfigError(f"z_floor: expected a number <= 0 (-inf for no floor), got {z_floor!r}")
        self.z_floor = float(z_floor)
        # the hash of the corpus the index was built from, before `IndexConfig.informal` filled it in
        self.source_sha256 = source_sha256 if source_sha256 is not None else corpus_sha256(self.corpus)
        self.corpus_info = dict(corpus_info) if corpus_info else {"name": "custom", "n_declarations": n}
        base = SEMANTIC_CHANNEL_WEIGHTS if semantic is not None else LEXICAL_CHANNEL_WEIGHTS
        self.channel_weights = {c: w for c, w in base.items() if c in self.channels}
        if channel_weights:
            unknown = set(channel_weights) - {"bm25", "dense", "name", "semantic"}
            if unknown:
                raise ConfigError(f"channel_weights: unknown channel(s) {sorted(unknown)}")
            self.channel_weights.update(channel_weights)
        if name_index is None:
            name_index = {}
            for i, decl in enumerate(self.corpus):
                name_index.setdefault(decl.name, i)
        self._by_name = name_index
        if result_names is None:
            result_names = named_results(self.corpus)
        self.result_names = result_names
        self._by_result_name: dict[frozenset[str], list[int]] = {}
        for title, rows in result_names.items():
            terms = frozenset(self.tokenizer.typed_terms(title))
            if terms:
                known = self._by_result_name.setdefault(terms, [])
                known.extend(r for r in rows if r not in known)
        self._own_names_cache: dict[int, frozenset[frozenset[str]]] = {}
        self._dense_rows = dense_model.index() if dense_model is not None else {}

    @classmethod
    def build(
        cls,
        corpus: Sequence[Declaration],
        config: IndexConfig | None = None,
        *,
        on_progress: BuildProgress | None = None,
        **kwargs: Any,
    ) -> SearchEngine:
        """Fill informal text, fit both BM25 channels, embed the corpus (dense, and semantic if asked).

        `config=None` means `default_index_config()`. `semantic="auto"` is resolved here and stored resolved.
        Token lists are streamed into the BM25 postings, never held for the whole corpus, so all of Mathlib
        builds in well under 2 GB. `on_progress(stage, done, total)` reports each stage.
        """
        if len(corpus) == 0:
            raise InputError("cannot index an empty corpus")
        report = on_progress or (lambda stage, done, total: None)
        config = (config if config is not None else default_index_config()).resolved()
        source_sha256 = kwargs.pop("source_sha256", None) or corpus_sha256(corpus)
        n = len(corpus)
        report("informal text", 0, n)
        corpus = fill_informal(corpus, config.informal)
        report("informal text", n, n)
        tokenizer = LeanTokenizer(config.tokenizer)

        def counted(stage: str, texts: Any) -> Any:
            for i, item in enumerate(texts, start=1):
                yield item
                if i % 4096 == 0 or i == n:
                    report(stage, i, n)

        text_bm25 = SparseBM25(config.bm25, dtype=np.float32).fit(
            counted("text index", (tokenizer.tokenize(document_text(d)) for d in corpus))
        )
        name_bm25 = SparseBM25(config.bm25, dtype=np.float32).fit(
            counted("name index", (tokenizer.name_tokens(d.name) for d in corpus))
        )
        if config.dense == "static":
            model = StaticModel.load()
            kwargs = {**kwargs, "dense_model": model, "dense_vectors": _dense_vectors(text_bm25, model, report)}
        semantic = load_semantic_embedder(config.semantic)
        if semantic is not None:
            logger.info("embedding %d declarations with %s", n, semantic.id)
            report("semantic embeddings", 0, n)
            kwargs = {**kwargs, "semantic": semantic}
            kwargs["semantic_embeddings"] = semantic.embed_documents(
                [semantic_text(d) for d in corpus],
                on_progress=lambda done, total: report("semantic embeddings", done, total),
            )
            report("semantic embeddings", n, n)
        logger.info("built an index of %d declarations (%d text terms)", n, len(text_bm25.vocabulary_))
        return cls(corpus, config, text_bm25, name_bm25, source_sha256=source_sha256, **kwargs)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels `hybrid` fuses: bm25, name, dense (unless built without), semantic (when present)."""
        out = ["bm25", "name"]
        if self.dense_model is not None:
            out.append("dense")
        if self.semantic is not None:
            out.append("semantic")
        return tuple(out)

    def __len__(self) -> int:
        return len(self.corpus)

    def lookup(self, name: str) -> Declaration | None:
        """The declaration called `name` (first one if duplicated), or None."""
        i = self._by_name.get(name)
        return None if i is None else self.corpus[i]

    def named(self, query: str) -> list[int]:
        """Rows the whole query names: the declaration whose full Lean name it is (backticks allowed), then those
        whose docstring gives them, in bold, a name with exactly the query's words (`naming.result_titles`:
        "fermat's little theorem" names `ZMod.pow_card_sub_one_eq_one`). Where some docstrings give the name as
        their own (`naming.own_titles`), those rows alone: "binomial theorem" names `add_pow`, not `sub_pow`, "A
        special case of the **binomial theorem**"."""
        return self._named_and_versions(query)[0]

    def _named_and_versions(self, query: str) -> tuple[list[int], list[int]]:
        """`named(query)`, and the rows whose docstrings give that name only as what they are a version, case or
        tool of, when others give it as their own (`sub_pow` for "binomial theorem")."""
        rows = []
        row = self._by_name.get(query.strip().strip("`").strip())
        if row is not None:
            rows.append(row)
        terms = frozenset(self.tokenizer.typed_terms(query))
        carriers = self._by_result_name.get(terms, ())
        own = [r for r in carriers if terms in self._own_names(r)]
        rows.extend(r for r in (own or carriers) if r not in rows)
        versions = [r for r in carriers if r not in rows] if own else []
        return rows, versions

    def _own_names(self, row: int) -> frozenset[frozenset[str]]:
        """The words of each name the row's docstring gives as its own, read on first use (a few rows per named
        query; the index stores every carrier, `result_names.json`)."""
        names = self._own_names_cache.get(row)
        if names is None:
            titles = own_titles(self.corpus[row].docstring)
            names = frozenset(frozenset(self.tokenizer.typed_terms(t)) for t in titles)
            self._own_names_cache[row] = names
        return names

    def index_of(self, name: str) -> int | None:
        """The corpus row of the declaration called `name` (first one if duplicated), or None."""
        return self._by_name.get(name)

    # -- channels -------------------------------------------------------------------------------------------
    def dense_query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """Static-model vectors of queries: the query terms weighted by their text-channel idf, as documents are."""
        if self.dense_model is None:
            raise ConfigError("this index has no dense channel (built with IndexConfig(dense='none'))")
        vocabulary, idf = self.text_bm25.vocabulary_, self.text_bm25.idf_
        weighted = []
        for q in queries:
            terms = self.tokenizer.query_terms(q)
            weighted.append({t: w * float(idf[vocabulary[t]]) for t, w in terms.items() if t in vocabulary})
        return self.dense_model.embed_terms(weighted, self._dense_rows)

    def _vector_rankings(self, queries: Sequence[str], depth: int, channel: str) -> list[_Ranking]:
        from repro_core.kernels import topk_similarity

        use_semantic = channel == "semantic" or self.dense_model is None  # either vector channel answers both modes
        if use_semantic and self.semantic is not None and self.semantic_embeddings is not None:
            vectors, matrix = self.semantic.embed_queries(list(queries)), self.semantic_embeddings
        else:
            vectors, matrix = self.dense_query_vectors(queries), self.dense_vectors
        scores, indices = topk_similarity(vectors, matrix, min(depth, len(self)), metric="dot")
        return [
            (np.asarray(indices[i]), np.asarray(scores[i], dtype=np.float64), _row_dot(matrix, vectors[i]))
            for i in range(len(queries))
        ]

    def _channel(self, channel: str, queries: Sequence[str], depth: int, *, lookups: bool = True) -> list[_Ranking]:
        """Each query's top `depth` (ids, scores) in `channel`, and a lookup of any row's exact score.

        A BM25 lookup keeps the query's whole score vector alive; `lookups=False` gives None instead.
        """
        if channel in ("dense", "semantic"):
            if self.dense_model is None and self.semantic is None:
                raise ConfigError(f"mode {channel!r}: this index has no dense channel and no semantic channel")
            # an index with one vector channel answers both `dense` and `semantic` with it
            return self._vector_rankings(queries, depth, channel)
        model = self.text_bm25 if channel == "bm25" else self.name_bm25
        out = []
        for q in queries:
            scores = model.get_scores(self.tokenizer.query_terms(q))
            ids, top = top_k_scores(scores, depth)
            out.append((ids, top, scores.__getitem__ if lookups else None))
        return out

    def _fused(self, queries: Sequence[str], depth: int) -> list[tuple[list[int], list[float]]]:
        """The hybrid ranking of each query: its channels' candidates fused by `self.fusion`."""
        names = [c for c in self.channels if self.channel_weights.get(c, 0.0) != 0.0]
        channels = {c: self._channel(c, queries, self.candidates) for c in names}
        weights = [self.channel_weights[c] for c in names]
        out = []
        for i in range(len(queries)):
            if self.fusion == "rrf":
                fused = rrf_fuse([channels[c][i][0] for c in names], k=self.rrf_k, weights=weights)[:depth]
            else:
                lists = [channels[c][i][:2] for c in names]
                lookups = [channels[c][i][2] for c in names]
                fused = zscore_fuse(lists, weights=weights, lookups=lookups, z_floor=self.z_floor)[:depth]
            out.append(([j for j, _ in fused], [s for _, s in fused]))
        return out

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        mode: Mode = "hybrid",
        rerank: bool = True,
        rerank_depth: int | None = None,
    ) -> list[list[Hit]]:
        """`search` for several queries (the dense channels embed and score them in one batch).

        `rerank_depth` overrides the engine's number of candidates the reranker sees (LSv2's `retrieve_k`).
        """
        if isinstance(queries, str):
            raise InputError("queries: expected a list of strings, got one string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k: expected a positive integer, got {k!r}")
        if mode not in MODES:
            raise ConfigError(f"mode: expected one of {MODES}, got {mode!r}")
        for q in queries:
            if not isinstance(q, str):
                raise InputError(f"query: expected a string, got {type(q).__name__}")
        if not isinstance(rerank, bool):
            raise ConfigError(f"rerank: expected true or false, got {rerank!r}")
        if rerank_depth is None:
            rerank_depth = self.rerank_depth
        elif isinstance(rerank_depth, bool) or not isinstance(rerank_depth, int) or rerank_depth < 1:
            raise ConfigError(f"rerank_depth: expected a positive integer, got {rerank_depth!r}")
        if not queries:
            return []
        depth = max(k, rerank_depth if rerank else k, self.candidates if mode == "hybrid" else k)
        if mode == "hybrid":
            ranked = []
            # a few queries at a time: each BM25 lookup holds a full [n_docs] score vector until it is fused
            for start in range(0, len(queries), FUSE_BATCH):
                ranked.extend(self._fused(queries[start : start + FUSE_BATCH], depth))
        else:
            ranked = [
                (list(map(int, r[0])), list(map(float, r[1])))
                for r in self._channel(mode, queries, depth, lookups=False)
            ]
        results = []
        for q, (indices, scores) in zip(queries, ranked, strict=True):
            limit = max(k, rerank_depth) if rerank else k
            hits = [
                Hit(int(i), float(s), self.corpus[int(i)]) for i, s in zip(indices[:limit], scores[:limit], strict=True)
            ]
            if rerank and hits:
                hits = self._reranked(q, hits, rerank_depth, (indices, scores))
            results.append(hits[:k])
        return results

    def _reranked(
        self, query: str, hits: list[Hit], depth: int, retrieved: tuple[Sequence[int], Sequence[float]]
    ) -> list[Hit]:
        """The top `depth` hits reordered by the reranker, with every declaration the query names (`named`) among
        them and first, then the versions of the named result (`_named_and_versions`): a name is an answer,
        wherever the retriever put it (`retrieved`: its ranked rows and scores; a row it did not retrieve at all
        enters with the lowest score). The reranker orders each group; the scores of the first two groups are
        raised by a constant each, so that scores still descend. The rest keep their order below."""
        head = hits[:depth]
        named, versions = self._named_and_versions(query)
        if named:
            have = {h.index for h in head}
            score_of = dict(zip(*retrieved, strict=True))
            floor = min(retrieved[1], default=0.0)
            head += [Hit(r, float(score_of.get(r, floor)), self.corpus[r]) for r in named + versions if r not in have]
        order = self.reranker.rerank(query, [h.declaration for h in head], [h.score for h in head])
        if named:
            group_of = dict.fromkeys(versions, 1) | dict.fromkeys(named, 0)
            groups: list[list[tuple[int, float]]] = [[], [], []]
            for pos, score in order:
                groups[group_of.get(head[pos].index, 2)].append((pos, score))
            below: float | None = None  # the highest score under the group being lifted
            for group in reversed(groups):
                if not group:
                    continue
                if below is not None:  # lift the group just above everything under it
                    lift = max(0.0, below - min(score for _, score in group)) + 1.0
                    group[:] = [(pos, score + lift) for pos, score in group]
                below = max(score for _, score in group)
            order = groups[0] + groups[1] + groups[2]
        reranked = [Hit(head[pos].index, float(score), head[pos].declaration) for pos, score in order]
        moved = {h.index for h in reranked}
        return reranked + [h for h in hits[depth:] if h.index not in moved]

    def search(self, query: str, k: int = 10, *, mode: Mode = "hybrid", rerank: bool = True) -> list[Hit]:
        """The `k` best declarations for `query` (Lean, LaTeX or English), best first.

        The default is the standard mode, as in the command line, the server and the reasoning mode: the `mode`
        channel(s), then the reranker over the top `rerank_depth`, with what the query names first (`named`).
        `rerank=False` gives the retriever's own order (what the benchmarks call "fused" in hybrid mode).
        """
        if not isinstance(query, str):
            raise InputError(f"query: expected a string, got {type(query).__name__}")
        return self.search_batch([query], k, mode=mode, rerank=rerank)[0]


def _row_dot(matrix: np.ndarray, vector: np.ndarray) -> ScoreLookup:
    """`lookup(ids)`: the dot products of `vector` with those rows of `matrix` (exact scores for fusion)."""
    vector = np.asarray(vector, dtype=np.float32)

    def lookup(ids: np.ndarray) -> np.ndarray:
        return np.asarray(matrix[ids], dtype=np.float32) @ vector

    return lookup


def _dense_vectors(text_bm25: SparseBM25, model: StaticModel, report: BuildProgress) -> np.ndarray:
    """`[n_docs, dim]` unit float32 vectors: each document's BM25 posting weights times its tokens' vectors.

    Why BM25 weights: they are the corpus's own idf and saturated term frequency, the weighting Model2Vec
    approximates with a Zipf prior; reusing them costs one sparse product and no second tokenisation.
    """
    rows = model.index()
    terms = sorted(text_bm25.vocabulary_, key=text_bm25.vocabulary_.__getitem__)
    to_row = np.array([rows.get(t, -1) for t in terms], dtype=np.int64)
    known = np.flatnonzero(to_row >= 0)
    weights = text_bm25.weights_[:, known].tocsr()  # [n_docs, n_known]
    projection = sp.csr_matrix(
        (np.ones(known.size, dtype=np.float32), (np.arange(known.size), to_row[known])),
        shape=(known.size, len(model.vocabulary)),
    )
    weights = (weights @ projection).tocsr()
    n = weights.shape[0]
    out = np.empty((n, model.dim), dtype=np.float32)
    for start in range(0, n, _EMBED_CHUNK):
        stop = min(start + _EMBED_CHUNK, n)
        out[start:stop] = model.embed_weighted(weights[start:stop])
        report("dense embeddings", stop, n)
    return out
