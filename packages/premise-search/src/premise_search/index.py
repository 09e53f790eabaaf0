"""Index directories: save a built `SearchEngine`, memory-map it back in a second, rebuild it when stale.

Layout (format version 2; nothing is pickled, every array is read with `allow_pickle=False`):

```
manifest.json              format, format_version, package version, corpus (library, commit, size, source
                           sha256), corpus_sha256, n_docs, tokenizer / dense / semantic / informal ids, the
                           IndexConfig (with `semantic` resolved), the BM25 scalars, build figures, file list
docs.bin, docs.offsets.npy the corpus rows as indexed (with the informal text), zlib blocks (`docstore`)
names.txt                  one declaration name per line
bm25_text.terms.json       the text channel's vocabulary (terms in column order)
bm25_text.{idf,doc_len,indptr,doc_ids,postings}.npy   its arrays (postings float32)
bm25_name.*                the same for the name channel
dense.int8.npy             [n_docs, dim] dense-channel vectors as int8 ...
dense.scale.npy            ... with one float32 scale per row (unit vectors; see `quantise_rows`)
semantic.npy               [n_docs, dim] float16 vectors of the semantic model (only when the index has one)
result_names.json          each name the docstrings give a result in bold -> its rows (`SearchEngine.named`)
```

Loading memory-maps the posting arrays (the OS pages in what queries touch) and decodes declarations only for
hits, so all of Mathlib opens in about a second. The dense vectors are expanded to float32 in memory, because
BLAS multiplies float32, not int8. The semantic model itself is never stored: the manifest names it and loading
takes it from the installed package; when it is missing, the channel is dropped with a warning.

`open_index(directory, corpus)` loads the directory when its manifest matches the corpus hash, the format
version and the requested config's ids, and otherwise builds and saves a fresh index there.
`open_default_index()` does the same for the shipped corpus (all of Mathlib), identified by the sha256 of the
shipped file so that a start never has to parse it. Files are written to a temporary sibling directory and
renamed into place, so a crash never leaves a half-written index that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.__about__ import __version__
from premise_search.bm25 import SparseBM25
from premise_search.corpus import (
    Declaration,
    corpus_sha256,
    default_corpus_info,
    default_corpus_path,
    file_sha256,
    read_jsonl,
    read_text,
)
from premise_search.docstore import DocStore, write_docstore
from premise_search.embed import load_semantic_embedder, resolve_semantic
from premise_search.informalize import OfflineInformalizer
from premise_search.retrieval import BuildProgress, IndexConfig, SearchEngine, default_index_config
from premise_search.static import StaticModel
from premise_search.tokenize import LeanTokenizer
from repro_core.errors import InputError

__all__ = [
    "CACHE_ENV",
    "FORMAT",
    "FORMAT_VERSION",
    "RESULT_NAMES_ID",
    "corpus_file_info",
    "default_index_dir",
    "index_is_current",
    "load_index",
    "open_default_index",
    "open_index",
    "quantise_rows",
    "read_manifest",
    "save_index",
]

logger = logging.getLogger(__name__)

FORMAT = "premise-search-index"
FORMAT_VERSION = 2
#: How `result_names.json` was made (`retrieval.named_results`); an index without it or with another id is rebuilt.
RESULT_NAMES_ID = "result-names-v1"
_RESULT_NAMES = "result_names.json"
#: Environment variable naming the directory of the default (all of Mathlib) index.
CACHE_ENV = "PREMISE_SEARCH_INDEX_DIR"
_MANIFEST = "manifest.json"
_BM25_ARRAYS = ("idf", "doc_len", "indptr", "doc_ids", "postings")


def default_index_dir() -> Path:
    """Where the default index is cached: `$PREMISE_SEARCH_INDEX_DIR`, else the user cache directory.

    The user cache directory comes from `platformdirs` (`~/.cache/premise-search` on Linux, `~/Library/Caches`
    on macOS, `%LOCALAPPDATA%` on Windows); the index lives in its `mathlib-index` folder.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    import platformdirs

    return platformdirs.user_cache_path("premise-search", appauthor=False) / "mathlib-index"


def _ids(config: IndexConfig) -> dict[str, str]:
    return {
        "tokenizer": LeanTokenizer(config.tokenizer).id,
        "result_names": RESULT_NAMES_ID,
        "dense": StaticModel.load_meta_id() if config.dense == "static" else "none",
        "semantic": _semantic_id(config.semantic),
        "informal": "none" if config.informal == "none" else OfflineInformalizer().id,
    }


def _semantic_id(name: str) -> str:
    """Id of the semantic model a (possibly `auto`) name stands for here; `none` without one. Loads no weights."""
    try:
        model = load_semantic_embedder(resolve_semantic(name))
    except ImportError:
        return "missing:" + name
    return "none" if model is None else model.id


def quantise_rows(vectors: np.ndarray, *, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """(int8 `[n, d]`, float32 scale `[n]`) with `row ≈ scale * q`: one scale per row, `max |row| -> 127`.

    For unit vectors the rounding error of a dot product is below about `0.5 * scale * sqrt(d)`; the README
    reports the recall this costs. Works `block` rows at a time, so the temporaries stay small.
    """
    n = vectors.shape[0]
    quantised = np.empty(vectors.shape, dtype=np.int8)
    scale = np.ones(n, dtype=np.float32)
    for start in range(0, n, block):
        rows = np.asarray(vectors[start : start + block], dtype=np.float32)
        peak = np.abs(rows).max(axis=1) if rows.shape[1] else np.zeros(rows.shape[0], dtype=np.float32)
        part = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        scale[start : start + block] = part
        quantised[start : start + block] = np.clip(np.rint(rows / part[:, None]), -127, 127)
    return quantised, scale


def _save_bm25(model: SparseBM25, directory: Path, stem: str) -> dict[str, Any]:
    state = model.state()
    (directory / f"{stem}.terms.json").write_text(json.dumps(state["terms"], ensure_ascii=False), encoding="utf-8")
    for key in _BM25_ARRAYS:
        np.save(directory / f"{stem}.{key}.npy", np.ascontiguousarray(state[key]))
    return {"config": state["config"], "avgdl": state["avgdl"], "average_idf": state["average_idf"]}


def _load_bm25(directory: Path, stem: str, scalars: dict[str, Any]) -> SparseBM25:
    terms = json.loads((directory / f"{stem}.terms.json").read_text(encoding="utf-8"))
    arrays = {key: np.load(directory / f"{stem}.{key}.npy", mmap_mode="r", allow_pickle=False) for key in _BM25_ARRAYS}
    return SparseBM25.from_state({**scalars, "terms": terms, **arrays})


def save_index(engine: SearchEngine, directory: str | os.PathLike[str], *, build: dict[str, Any] | None = None) -> Path:
    """Write `engine` to `directory` (replacing an index already there); returns the directory.

    `build` (optional) is recorded in the manifest: how long the build took and its peak memory.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        write_docstore(engine.corpus, tmp)
        bm25 = {
            stem: _save_bm25(model, tmp, stem)
            for stem, model in (("bm25_text", engine.text_bm25), ("bm25_name", engine.name_bm25))
        }
        if engine.dense_vectors is not None:
            quantised, scale = quantise_rows(np.asarray(engine.dense_vectors, dtype=np.float32))
            np.save(tmp / "dense.int8.npy", quantised)
            np.save(tmp / "dense.scale.npy", scale)
        if engine.semantic_embeddings is not None:
            np.save(tmp / "semantic.npy", np.asarray(engine.semantic_embeddings, dtype=np.float16))
        (tmp / _RESULT_NAMES).write_text(json.dumps(engine.result_names, sort_keys=True), encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "corpus": engine.corpus_info,
            "corpus_sha256": engine.source_sha256,  # the corpus as given, before informal text was filled in
            "n_docs": len(engine.corpus),
            **_ids(engine.config),
            "dense": engine.dense_model.id if engine.dense_model is not None else "none",
            "semantic": engine.semantic.id if engine.semantic is not None else "none",
            "config": engine.config.to_dict(),
            "bm25": bm25,
            "build": build or {},
            "files": sorted(p.name for p in tmp.iterdir()),
        }
        manifest["bytes"] = sum((tmp / name).stat().st_size for name in manifest["files"])
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
        manifest = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest is not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} manifest", path=path, field="format")
    return manifest


def index_is_current(
    directory: str | os.PathLike[str],
    corpus: Sequence[Declaration] | None = None,
    config: IndexConfig | None = None,
    *,
    corpus_hash: str | None = None,
) -> bool:
    """True when `directory` holds an index of this format for the corpus (if given) built with `config`'s ids.

    The corpus is checked by `corpus_hash` when given (cheap: the default corpus's file hash), else by hashing
    `corpus` row by row.
    """
    try:
        manifest = read_manifest(directory)
    except InputError:
        return False
    if manifest.get("format_version") != FORMAT_VERSION:
        return False
    if config is not None and any(manifest.get(key) != value for key, value in _ids(config).items()):
        return False
    if corpus_hash is not None:
        return manifest.get("corpus_sha256") == corpus_hash
    return corpus is None or manifest.get("corpus_sha256") == corpus_sha256(corpus)


def load_index(directory: str | os.PathLike[str], **engine_kwargs: Any) -> SearchEngine:
    """Load a saved index (memory-mapped, no refitting, no pickle). `engine_kwargs` go to `SearchEngine`.

    A semantic channel needs its model installed (the manifest's `semantic` id must match the installed one);
    otherwise it is dropped with a warning and the other channels answer.
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
    config = IndexConfig.from_json(manifest["config"])
    corpus = DocStore(directory)
    if len(corpus) != manifest.get("n_docs"):
        raise InputError(
            f"names.txt has {len(corpus)} rows, the manifest says {manifest.get('n_docs')}", path=directory
        )
    text_bm25 = _load_bm25(directory, "bm25_text", manifest["bm25"]["bm25_text"])
    name_bm25 = _load_bm25(directory, "bm25_name", manifest["bm25"]["bm25_name"])
    dense_kwargs: dict[str, Any] = {}
    if manifest.get("dense", "none") != "none":
        dense_kwargs = _load_dense(directory, manifest["dense"], len(corpus))
    semantic_kwargs: dict[str, Any] = {}
    if manifest.get("semantic", "none") != "none":
        semantic_kwargs = _load_semantic(directory, config.semantic, manifest["semantic"], len(corpus))
        if not semantic_kwargs:
            config = IndexConfig.from_json({**config.to_dict(), "semantic": "none"})
    engine_kwargs.setdefault("source_sha256", manifest.get("corpus_sha256"))
    engine_kwargs.setdefault("corpus_info", manifest.get("corpus"))
    return SearchEngine(
        corpus,
        config,
        text_bm25,
        name_bm25,
        name_index=corpus.name_index,
        result_names=_load_result_names(directory, len(corpus)),
        **dense_kwargs,
        **semantic_kwargs,
        **engine_kwargs,
    )


def _load_result_names(directory: Path, n_docs: int) -> dict[str, list[int]]:
    """`result_names.json`, checked; empty (with a warning) for an index written before it existed."""
    path = directory / _RESULT_NAMES
    if not path.is_file():
        logger.warning(
            "%s has no %s: queries that name a result by its bold name are not recognised; "
            "rebuild it with `premise-search index build --rebuild`",
            directory,
            _RESULT_NAMES,
        )
        return {}
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(data, dict) or not all(
        isinstance(rows, list) and all(isinstance(r, int) and 0 <= r < n_docs for r in rows) for rows in data.values()
    ):
        raise InputError(f"expected names mapped to lists of rows below {n_docs}", path=path)
    return data


def _load_dense(directory: Path, recorded: str, n_docs: int) -> dict[str, Any]:
    model = StaticModel.load()
    if model.id != recorded:
        raise InputError(
            f"the index's dense vectors come from {recorded}, this installation ships {model.id}; rebuild the index",
            path=directory,
            field="dense",
        )
    quantised = np.load(directory / "dense.int8.npy", mmap_mode="r", allow_pickle=False)
    scale = np.load(directory / "dense.scale.npy", allow_pickle=False)
    if quantised.shape != (n_docs, model.dim) or scale.shape != (n_docs,):
        raise InputError(
            f"dense vectors have shape {quantised.shape}, expected ({n_docs}, {model.dim})", path=directory
        )
    vectors = np.empty(quantised.shape, dtype=np.float32)
    step = 65_536  # expand in blocks: no int8 -> float64 temporary of the whole matrix
    for start in range(0, n_docs, step):
        np.multiply(
            quantised[start : start + step], scale[start : start + step, None], out=vectors[start : start + step]
        )
    return {"dense_model": model, "dense_vectors": vectors}


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
    return {"semantic": model, "semantic_embeddings": vectors.astype(np.float32)}


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (`ru_maxrss` is KiB on Linux, bytes on macOS); None on Windows."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _build_and_save(
    corpus: Sequence[Declaration],
    directory: str | os.PathLike[str],
    config: IndexConfig | None,
    on_progress: BuildProgress | None,
    **engine_kwargs: Any,
) -> SearchEngine:
    start = time.perf_counter()
    engine = SearchEngine.build(corpus, config, on_progress=on_progress, **engine_kwargs)
    peak = _peak_rss_mb()
    build = {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": None if peak is None else round(peak)}
    save_index(engine, directory, build=build)
    return engine


def open_index(
    directory: str | os.PathLike[str],
    corpus: Sequence[Declaration],
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    on_progress: BuildProgress | None = None,
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
    return _build_and_save(corpus, directory, config, on_progress, **engine_kwargs)


def open_default_index(
    directory: str | os.PathLike[str] | None = None,
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    on_progress: BuildProgress | None = None,
    **engine_kwargs: Any,
) -> SearchEngine:
    """The index of the shipped corpus (all of Mathlib): loaded from the cache, or built there on first use.

    `directory` defaults to `default_index_dir()`. The cached index is current when it was built from the
    same shipped file (sha256 of its bytes) with the same config ids, so a start reads no corpus rows; the
    first build takes about a minute and a half on 2 cores (README, "Building all of Mathlib").
    """
    directory = Path(directory) if directory is not None else default_index_dir()
    config = config if config is not None else default_index_config()
    info = default_corpus_info()
    if not rebuild and index_is_current(directory, config=config, corpus_hash=info["sha256"]):
        logger.info("loading the index of %s in %s", info["label"], directory)
        return load_index(directory, **engine_kwargs)
    logger.info("building the index of %s (%d declarations) in %s", info["label"], info["n_declarations"], directory)
    corpus = read_jsonl(default_corpus_path())
    return _build_and_save(
        corpus, directory, config, on_progress, source_sha256=info["sha256"], corpus_info=info, **engine_kwargs
    )


def corpus_file_info(paths: Sequence[str | os.PathLike[str]], n_declarations: int) -> dict[str, Any]:
    """`corpus_info` for an index built from the user's own files: their names, sizes and sha256."""
    files = [{"name": Path(p).name, "sha256": file_sha256(p) if Path(p).is_file() else None} for p in paths]
    return {
        "name": "custom",
        "label": ", ".join(Path(p).name for p in paths) or "custom",
        "files": files,
        "n_declarations": n_declarations,
    }
