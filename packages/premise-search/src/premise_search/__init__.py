"""LeanSearch v2: premise retrieval for Lean 4 in standard and reasoning modes (arXiv 2605.13137).

Implemented so far (issue #7): the `Declaration` corpus with LeanSearch v2-compatible JSONL, a Lean 4 source
scanner, the embedded Mathlib subset, a Lean-aware tokenizer, BM25 (rank_bm25 scores from a sparse matrix), an
offline hashed n-gram embedder, hybrid RRF search with a name channel, a feature reranker, index directories, and
the upstream MathlibQR / MathlibMPR metrics, and an HTTP server with leansearch.net's API and a search page.
Reasoning mode and informalisation come later.

    from premise_search import SearchEngine, load_default_corpus
    engine = SearchEngine.build(load_default_corpus())
    engine.search("a poset with binary joins and meets", k=5, rerank=True)
"""

from __future__ import annotations

from premise_search.__about__ import __version__
from premise_search.bm25 import BM25Config, SparseBM25
from premise_search.corpus import Declaration, load_default_corpus, read_jsonl, write_jsonl
from premise_search.embed import HashingEmbedder, HashingEmbedderConfig
from premise_search.index import load_index, open_index, save_index
from premise_search.rerank import FeatureReranker
from premise_search.retrieval import Hit, IndexConfig, SearchEngine
from premise_search.scanner import scan_lean_directory, scan_lean_file, scan_lean_source
from premise_search.server import SearchService, ServerLimits, make_server
from premise_search.tokenize import LeanTokenizer, TokenizerConfig

__all__ = [
    "PAPER",
    "BM25Config",
    "Declaration",
    "FeatureReranker",
    "HashingEmbedder",
    "HashingEmbedderConfig",
    "Hit",
    "IndexConfig",
    "LeanTokenizer",
    "SearchEngine",
    "SearchService",
    "ServerLimits",
    "SparseBM25",
    "TokenizerConfig",
    "__version__",
    "load_default_corpus",
    "load_index",
    "make_server",
    "open_index",
    "read_jsonl",
    "save_index",
    "scan_lean_directory",
    "scan_lean_file",
    "scan_lean_source",
    "write_jsonl",
]

#: The paper this distribution implements.
PAPER = "arXiv:2605.13137"
