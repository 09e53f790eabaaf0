"""The `premise-search` command line: indexes, search, reasoning mode, informalisation, evaluation, serving."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.__about__ import __version__
from premise_search.corpus import (
    Declaration,
    default_corpus_path,
    load_default_corpus,
    read_jsonl,
    read_text,
    write_jsonl,
)
from premise_search.evaluation import (
    MPR_KS,
    QR_KS,
    MPRQuery,
    benchmark_path,
    load_mathlib_mpr,
    load_mathlib_qr,
    mpr_metrics,
    qr_metrics,
)
from premise_search.index import (
    corpus_file_info,
    default_index_dir,
    load_index,
    open_default_index,
    open_index,
    read_manifest,
)
from premise_search.informalize import InformalizeConfig, Informalizer
from premise_search.llm import ENV_PREFIX, LLMClient, LLMConfig, client_from_config
from premise_search.llm_rerank import LLMReranker
from premise_search.reasoning import LLMPlanner, ReasoningConfig, ReasoningEngine, ReasoningProblem
from premise_search.reproduction import quick
from premise_search.retrieval import FUSE_BATCH, MODES, Hit, SearchEngine
from premise_search.scanner import scan_lean_directory
from premise_search.server import DEFAULT_HOST, DEFAULT_PORT, make_server
from repro_core.cli import (
    Bounded,
    InputPath,
    add_command,
    make_parser,
    non_negative_int,
    positive_float,
    positive_int,
    progress,
    run_main,
)
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError, InputError
from repro_core.umbrella import add_reproduce_command, reproduce_package

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

#: Input types (checked at parse time, before any work): corpora are JSONL(.gz) files, indexes and Lean sources
#: are folders, benchmark and statement files are files.
CORPUS_FILE = InputPath(suffixes=(".jsonl", ".jsonl.gz"))
LEAN_FOLDER = InputPath(directory=True, suffixes=(".lean",))
INDEX_FOLDER = InputPath(directory=True)
JSON_FILE = InputPath(suffixes=(".json",))
STATEMENT_FILE = InputPath(suffixes=(".json", ".lean", ".txt"))
#: A TCP port; 0 asks the OS for any free one.
PORT = Bounded(int, low=0, high=65535)
#: Concurrent LLM calls: a thread each, so a sane upper bound keeps a typo from starting a million threads.
PARALLELISM = Bounded(int, low=1, high=1024)

DESCRIPTION = """Premise search for Lean 4 (LeanSearch v2, arXiv 2605.13137): standard and reasoning modes, offline.

commands:
  index build   build an index directory (all of Mathlib by default, JSONL corpora, or .lean sources)
  index info    show an index's manifest
  search        search declarations by a Lean, LaTeX or English query
  reason        reasoning mode: sketch sub-queries, retrieve, filter, judge, reflect; ranked premises + trace
  informalize   write informal names and descriptions for a corpus (offline, or an LLM when configured)
  eval          MathlibQR (nDCG@k, Recall@k) or MathlibMPR (Recall@k(group), Covered@k) with upstream metrics
  serve         an HTTP server with leansearch.net's API and a search page (127.0.0.1 by default)
  reproduce     this package's quick reproduction (also run by `repro reproduce`)

Without --index or --corpus, every command searches all of Mathlib (256,190 declarations at commit 5352afcc,
v4.28.0-rc1, shipped in the package). Its index is built on first use (about 1.5 min on 2 cores) into
$PREMISE_SEARCH_INDEX_DIR (default: the user cache directory, ~/.cache/premise-search/mathlib-index on Linux)
and loads in about a second afterwards.
No LLM is contacted unless one is configured: --llm-url/--llm-model or $PREMISE_SEARCH_LLM_BASE_URL and
$PREMISE_SEARCH_LLM_MODEL (an OpenAI-compatible /chat/completions server; key in $PREMISE_SEARCH_LLM_API_KEY)."""


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index", type=INDEX_FOLDER, help="index directory (default: all of Mathlib, the cached index)"
    )
    parser.add_argument(
        "--corpus", type=CORPUS_FILE, nargs="+", help="JSONL(.gz) corpus files to index in memory instead"
    )
    parser.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval channel(s) (default: hybrid)")
    parser.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rerank the top 20 with the feature reranker (default: on)",
    )


def _add_llm_options(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group(f"LLM ({what}; default: offline, nothing is contacted)")
    group.add_argument(
        "--llm-url", help=f"OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (or ${ENV_PREFIX}BASE_URL)"
    )
    group.add_argument("--llm-model", help=f"model name (or ${ENV_PREFIX}MODEL)")
    group.add_argument(
        "--llm-api-key-env",
        default=ENV_PREFIX + "API_KEY",
        metavar="VAR",
        help=f"environment variable holding the API key (default: {ENV_PREFIX}API_KEY)",
    )
    group.add_argument(
        "--llm-timeout", type=positive_float, default=120.0, help="seconds per LLM request, > 0 (default: 120)"
    )


def _llm(args: argparse.Namespace) -> LLMClient | None:
    config = LLMConfig.from_env(
        base_url=args.llm_url,
        model=args.llm_model,
        api_key=os.environ.get(args.llm_api_key_env) or None,
        timeout_s=args.llm_timeout,
    )
    return client_from_config(config)


_HOST_PATTERN = re.compile(r"[A-Za-z0-9._:%-]{1,253}")


def _host(text: str) -> str:
    """An argparse type for `--host`: a host name or an IPv4/IPv6 address (resolved before the index loads)."""
    if not _HOST_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address")
    return text


_host.__name__ = "host"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("premise-search", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="build or inspect an index directory")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = add_command(
        index_commands,
        "build",
        help="build an index directory",
        description="Build (or refresh) an index: manifest.json, corpus rows, BM25 matrices, embeddings.",
        epilog="examples:\n  premise-search index build                  # all of Mathlib into the cache\n"
        "  premise-search index build --with-mathlib --lean ~/MyProject/MyProject --out idx   # yours + Mathlib\n"
        "  premise-search index build --corpus batteries.jsonl --out idx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "--corpus", type=CORPUS_FILE, nargs="+", help="JSONL(.gz) corpus files (ours or LeanSearch v2's)"
    )
    build.add_argument("--lean", type=LEAN_FOLDER, nargs="+", help="folders of .lean sources to scan")
    build.add_argument(
        "--with-mathlib", action="store_true", help="also index the shipped Mathlib corpus beside --corpus/--lean"
    )
    build.add_argument("--out", type=Path, help="index directory (default: Mathlib's cached index)")
    build.add_argument("--rebuild", action="store_true", help="rebuild even when the index is current")
    info = add_command(index_commands, "info", help="show an index's manifest")
    info.add_argument("--index", type=INDEX_FOLDER, help="index directory (default: Mathlib's cached index)")

    search = add_command(
        commands,
        "search",
        help="search declarations",
        epilog='example:\n  premise-search search "order of an element divides the order of the group" -k 5 --json',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("query", nargs="+", help="one or more queries")
    search.add_argument("-k", type=positive_int, default=10, help="results per query, >= 1 (default: 10)")
    _add_engine_options(search)
    search.add_argument(
        "--llm-rerank", action="store_true", help="rerank with the configured LLM (yes/no per candidate) instead"
    )
    search.add_argument(
        "--rerank-depth", type=positive_int, default=None, help="candidates the reranker sees, >= 1 (default: 20)"
    )
    _add_llm_options(search, "for --llm-rerank")

    reason = add_command(
        commands,
        "reason",
        help="reasoning mode: premises for a theorem",
        description="Sketch sub-queries for a theorem, retrieve each in standard mode, filter, judge and reflect\n"
        "(at most 4 attempts), then rank the kept premises by DCG votes. Offline planner unless an LLM is set.",
        epilog="examples:\n  premise-search reason --informal 'the order of an element divides the group order'\n"
        "  premise-search reason --statement-file thm.lean -k 20 --json\n"
        "  premise-search reason --statement-file problem.json   # {formal_statement, informal_statement, ...}",
    )
    reason.add_argument(
        "--statement-file",
        type=STATEMENT_FILE,
        help=".json object with formal_statement/informal_statement/informal_proof, a .lean file, or English text",
    )
    reason.add_argument("--formal", help="the Lean statement")
    reason.add_argument("--informal", help="the statement in English")
    reason.add_argument("-k", type=positive_int, default=10, help="premises to print, >= 1 (default: 10)")
    reason.add_argument(
        "--big-loop", type=non_negative_int, default=3, help="reflection rounds after the first, >= 0 (default: 3)"
    )
    _add_engine_options(reason)
    _add_llm_options(reason, "sketch, filter and judge")

    informalize = add_command(
        commands,
        "informalize",
        help="informal names and descriptions for a corpus",
        description="Informalise declarations bottom-up along their dependency levels (Kahn's algorithm).\n"
        "Offline (name, signature, docstring) unless an LLM is configured.",
        epilog="examples:\n  premise-search informalize --out informal.jsonl.gz\n"
        "  premise-search informalize --corpus mine.jsonl --out out.jsonl --llm-url http://127.0.0.1:8000/v1 "
        "--llm-model qwen3-32b",
    )
    informalize.add_argument(
        "--corpus", type=CORPUS_FILE, nargs="+", help="JSONL(.gz) corpus files (default: all of Mathlib, shipped)"
    )
    informalize.add_argument("--lean", type=LEAN_FOLDER, nargs="+", help="folders of .lean sources to scan")
    informalize.add_argument("--out", type=Path, required=True, help="output JSONL(.gz)")
    informalize.add_argument("--style", choices=("native", "lsv2"), default="native", help="output fields")
    informalize.add_argument("--limit", type=positive_int, help="only the first N declarations (N >= 1)")
    informalize.add_argument("--overwrite", action="store_true", help="redo rows that already have informal text")
    informalize.add_argument(
        "--fallback-offline", action="store_true", help="write offline text for rows the LLM fails on"
    )
    informalize.add_argument(
        "--parallelism", type=PARALLELISM, default=16, help="concurrent LLM calls per level, 1 to 1024 (default: 16)"
    )
    _add_llm_options(informalize, "informaliser")

    evaluate = add_command(commands, "eval", help="evaluate on MathlibQR or MathlibMPR")
    evaluate.add_argument("benchmark", choices=("qr", "mpr"), help="qr = MathlibQR, mpr = MathlibMPR")
    evaluate.add_argument("--file", type=JSON_FILE, help="benchmark JSON (default: the shipped LeanSearch v2 file)")
    evaluate.add_argument(
        "--slice",
        choices=("fair", "full"),
        default="fair",
        help="MathlibQR rows: fair (810, shared171) or full (946) (default: fair)",
    )
    evaluate.add_argument(
        "--query-field",
        choices=("nl", "formal"),
        default="nl",
        help="MathlibMPR query: the English statement or the formal statement (default: nl)",
    )
    evaluate.add_argument(
        "--reasoning", action="store_true", help="MathlibMPR: run the reasoning mode per problem (offline planner)"
    )
    _add_engine_options(evaluate)
    _add_llm_options(evaluate, "reasoning planner for --reasoning")

    serve = add_command(
        commands,
        "serve",
        help="serve the HTTP API and the search page",
        description="Serve POST /search, /search_with_profile, /fetch, /reasoning, GET /health and the page at /.",
        epilog="example:\n  premise-search serve --port 8765   # then open http://127.0.0.1:8765/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", type=_host, default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST}, loopback only)"
    )
    serve.add_argument(
        "--port",
        type=PORT,
        default=DEFAULT_PORT,
        help=f"port, 0 to 65535; 0 for any free one (default: {DEFAULT_PORT})",
    )
    serve.add_argument("--index", type=INDEX_FOLDER, help="index directory (default: all of Mathlib, the cached index)")
    serve.add_argument(
        "--corpus", type=CORPUS_FILE, nargs="+", help="JSONL(.gz) corpus files to index in memory instead"
    )

    add_reproduce_command(commands)
    return parser


def _gather_corpus(paths: Sequence[Path] | None, lean: Sequence[Path] | None = None) -> list[Declaration]:
    """Every declaration of the given files and folders; each must contribute one, since an empty source is
    almost always a wrong path (a folder without .lean files, a corpus file that is empty)."""
    rows: list[Declaration] = []
    for path in paths or ():
        found = read_jsonl(path)
        if not found:
            raise InputError("no declarations in this corpus file", path=path)
        rows.extend(found)
    for root in lean or ():
        if not root.is_dir():
            raise InputError("not a directory", path=root)
        found = list(scan_lean_directory(root))
        if not found:
            raise InputError("no declarations in the .lean files of this folder", path=root)
        rows.extend(found)
    return rows


class _BuildBars:
    """`on_progress` for index builds: one progress bar per stage on stderr (`repro_core.cli.progress`: a live bar
    on a terminal, a plain line every few seconds elsewhere, nothing under -q)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._stage: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self.close()
            self._stage, self._bar = stage, progress(total=total, desc=stage, unit="decl")
            self._bar.__enter__()
            logger.info("index build: %s (%d declarations)", stage, total)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> _BuildBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_engine(directory: Path | None = None, *, rebuild: bool = False) -> SearchEngine:
    """All of Mathlib: the cached index, built (with progress bars) on first use."""
    with _BuildBars() as bars:
        return open_default_index(directory, rebuild=rebuild, on_progress=bars)


def _check_engine_sources(args: argparse.Namespace) -> None:
    """Refuse contradictory engine options before anything is read or built."""
    if args.corpus and args.index:
        raise ConfigError("--index and --corpus: give one or the other")


def _engine(args: argparse.Namespace) -> SearchEngine:
    _check_engine_sources(args)
    if args.corpus:
        corpus = _gather_corpus(args.corpus)
        if not corpus:
            raise InputError("no declarations found in the given corpus files", path=args.corpus[0])
        with _BuildBars() as bars:
            return SearchEngine.build(corpus, on_progress=bars, corpus_info=corpus_file_info(args.corpus, len(corpus)))
    if args.index:
        return load_index(args.index)
    return _default_engine()


def _index_build(args: argparse.Namespace) -> dict[str, Any]:
    if args.corpus or args.lean:
        if args.out is None:
            raise ConfigError("--out: required with --corpus or --lean (the default directory holds Mathlib's index)")
        corpus = _gather_corpus(args.corpus, args.lean)
        if not corpus:
            raise InputError("no declarations found in the given corpus files or folders")
        out = args.out
        sources = [*(args.corpus or ()), *(args.lean or ())]
        if args.with_mathlib:
            corpus = [*load_default_corpus(), *corpus]
            sources = [default_corpus_path(), *sources]
        info = corpus_file_info(sources, len(corpus))
        with _BuildBars() as bars:
            open_index(out, corpus, rebuild=args.rebuild, on_progress=bars, corpus_info=info)
    else:
        if args.with_mathlib:
            raise ConfigError("--with-mathlib: give the other sources too (--corpus or --lean)")
        out = args.out or default_index_dir()
        _default_engine(out, rebuild=args.rebuild)
    return {"index": str(out), **_summary(read_manifest(out))}


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What `index build` and `index info` print: the corpus, the models and settings, size and build cost."""
    corpus = manifest.get("corpus") or {}
    config = manifest.get("config") or {}
    out = {
        "corpus": corpus.get("label", corpus.get("name", "unknown")),
        "commit": corpus.get("commit"),
        "n_docs": manifest.get("n_docs"),
        "corpus_sha256": manifest.get("corpus_sha256"),
        "dense_model": manifest.get("dense"),
        "semantic_model": manifest.get("semantic"),
        "informal_text": manifest.get("informal"),
        "tokenizer": manifest.get("tokenizer"),
        "format_version": manifest.get("format_version"),
        "package_version": manifest.get("package_version"),
        "bytes": manifest.get("bytes"),
        "build_seconds": (manifest.get("build") or {}).get("seconds"),
        "build_peak_rss_mb": (manifest.get("build") or {}).get("peak_rss_mb"),
    }
    if config.get("semantic") not in (None, "none") and manifest.get("semantic") == "none":
        out["semantic_model"] = f"none (asked for {config['semantic']})"
    return out


def _human_kv(result: dict[str, Any]) -> str:
    return "\n".join(f"{key:>16}: {value}" for key, value in result.items())


def _search(args: argparse.Namespace) -> list[dict[str, Any]]:
    _check_engine_sources(args)
    llm = _llm(args)
    if args.llm_rerank and llm is None:
        raise ConfigError("--llm-rerank: no LLM configured (give --llm-url and --llm-model)")
    engine = _engine(args)
    if args.llm_rerank:
        engine.reranker = LLMReranker(llm)  # type: ignore[arg-type]  # checked above
    rerank = args.rerank or args.llm_rerank
    results = engine.search_batch(args.query, args.k, mode=args.mode, rerank=rerank, rerank_depth=args.rerank_depth)
    return [
        {"query": q, "results": [hit.to_dict() for hit in hits]} for q, hits in zip(args.query, results, strict=True)
    ]


def _human_search(result: list[dict[str, Any]]) -> str:
    lines = []
    for block in result:
        lines.append(f"query: {block['query']}")
        for rank, hit in enumerate(block["results"], start=1):
            lines.append(f"{rank:>3}. {hit['name']}  [{hit['kind']}, {hit['module']}]  score {hit['score']:.4g}")
            lines.append(f"     {hit['signature'][:160]}")
    return "\n".join(lines)


def _read_problem(args: argparse.Namespace) -> ReasoningProblem:
    fields = {"formal_statement": args.formal or "", "informal_statement": args.informal or ""}
    path = args.statement_file
    if path is not None:
        if args.formal or args.informal:
            raise ConfigError("--statement-file: give it alone, not with --formal/--informal")
        text = read_text(path)
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
            if not isinstance(data, dict):
                raise InputError("expected a JSON object with formal_statement and/or informal_statement", path=path)
            fields = {}
            for key, alias in (
                ("formal_statement", None),
                ("informal_statement", "NL_main_result"),
                ("informal_proof", None),
            ):
                value = data.get(key, data.get(alias, "") if alias else "")
                if value is None:
                    value = ""
                if not isinstance(value, str):
                    raise InputError("expected a string", path=path, field=key)
                fields[key] = value
        elif path.suffix == ".lean":
            fields = {"formal_statement": text, "informal_statement": ""}
        else:
            fields = {"formal_statement": "", "informal_statement": text}
    try:
        return ReasoningProblem(**fields)
    except InputError as exc:
        raise InputError(exc.message, path=path, field=exc.field) from None


def _reasoner(
    engine: SearchEngine, llm: LLMClient | None, args: argparse.Namespace, big_loop: int = 3
) -> ReasoningEngine:
    """The reasoning engine; each sub-query uses the command's `--mode` and `--rerank` in standard mode."""
    planner = LLMPlanner(llm) if llm is not None else None
    return ReasoningEngine(engine, planner, ReasoningConfig(big_loop=big_loop, mode=args.mode, rerank=args.rerank))


def _reason(args: argparse.Namespace) -> dict[str, Any]:
    _check_engine_sources(args)
    problem = _read_problem(args)
    llm = _llm(args)
    engine = _engine(args)
    trace = _reasoner(engine, llm, args, args.big_loop).run(problem, output_top_k=args.k)
    return trace.to_dict()


def _human_reason(result: dict[str, Any]) -> str:
    lines = [f"planner: {result['planner']}"]
    for attempt in result["attempts"]:
        verdict = attempt["verdict"]
        kept = sum(len(q["kept"]) for q in attempt["queries"])
        lines.append(
            f"attempt {attempt['index'] + 1}: {len(attempt['queries'])} queries, {kept} kept, "
            f"judge {verdict['judgment']}: {verdict['reasoning']}"
        )
        for q in attempt["queries"]:
            lines.append(f"   - {q['query'][:100]}  -> {', '.join(q['kept'][:4]) or '(none)'}")
    lines.append("premises:")
    for rank, p in enumerate(result["ranking"], start=1):
        lines.append(f"{rank:>3}. {p['name']}  [{p['kind']}, {p['module']}]  score {p['score']:.3f} votes {p['votes']}")
    return "\n".join(lines)


def _informalize(args: argparse.Namespace) -> dict[str, Any]:
    llm = _llm(args)
    corpus = _gather_corpus(args.corpus, args.lean) if (args.corpus or args.lean) else load_default_corpus()
    if args.limit is not None:
        corpus = corpus[: args.limit]
    if not corpus:
        raise InputError("no declarations found in the given corpus files or folders")
    informalizer = Informalizer(
        llm,
        InformalizeConfig(parallelism=args.parallelism, overwrite=args.overwrite),
        fallback_offline=args.fallback_offline,
    )
    with progress(total=len(corpus), desc="informalize", unit="decl") as bar:
        result = informalizer.run(corpus, on_progress=bar.update)
    write_jsonl(result.declarations, args.out, style=args.style)
    return {"out": str(args.out), **result.summary()}


def _eval_reasoning(
    args: argparse.Namespace, engine: SearchEngine, problems: list[MPRQuery], llm: LLMClient | None
) -> dict[str, Any]:
    reasoner = _reasoner(engine, llm, args)
    rankings, attempts = [], 0
    for p in progress(problems, desc="reasoning", unit="problem"):
        trace = reasoner.run(ReasoningProblem(p.formal_statement, p.nl_statement), output_top_k=max(MPR_KS))
        rankings.append(trace.names)
        attempts += len(trace.attempts)
    return {
        "benchmark": "MathlibMPR",
        "n_queries": len(problems),
        "mode": "reasoning",
        "planner": reasoner.planner.id if reasoner.planner is not None else None,
        "mean_attempts": attempts / max(len(problems), 1),
        "metrics": {"all": mpr_metrics(rankings, problems)},
    }


def _benchmark_rows(args: argparse.Namespace) -> list[Any]:
    """The benchmark's rows (MathlibQR queries of the slice, or MathlibMPR problems); never empty, because the
    mean over no query is NaN, which would be printed as a score."""
    where = args.file or benchmark_path("MathlibQR.json" if args.benchmark == "qr" else "MathlibMPR.json")
    if args.benchmark == "qr":
        rows: list[Any] = load_mathlib_qr(args.file)
        if args.slice == "fair":
            rows = [r for r in rows if r.fair]
        if not rows:
            raise InputError(f"no MathlibQR query with a non-empty text in the {args.slice} slice", path=where)
    else:
        rows = load_mathlib_mpr(args.file)
        if not rows:
            raise InputError("no MathlibMPR problem in the file", path=where)
    return rows


def _search_all(engine: SearchEngine, texts: list[str], k: int, args: argparse.Namespace) -> list[list[Hit]]:
    """`search_batch` over a benchmark's queries, with a progress bar in hybrid mode (about 50 ms a query over all
    of Mathlib). Hybrid search fuses `FUSE_BATCH` queries at a time anyway, so chunks of a multiple of it give the
    very same rankings; the single channels score every query in one fast batch, which is kept whole."""
    if args.mode != "hybrid":
        return engine.search_batch(texts, k, mode=args.mode, rerank=args.rerank)
    step = 4 * FUSE_BATCH
    ranked: list[list[Hit]] = []
    with progress(total=len(texts), desc="search", unit="query") as bar:
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step]
            ranked.extend(engine.search_batch(chunk, k, mode=args.mode, rerank=args.rerank))
            bar.update(len(chunk))
    return ranked


def _eval(args: argparse.Namespace) -> dict[str, Any]:
    if args.reasoning and args.benchmark != "mpr":
        raise ConfigError("--reasoning: only with the mpr benchmark")
    _check_engine_sources(args)
    rows = _benchmark_rows(args)
    llm = _llm(args) if args.reasoning else None
    engine = _engine(args)
    if args.reasoning:
        return _eval_reasoning(args, engine, rows, llm)
    if args.benchmark == "qr":
        ranked = _search_all(engine, [r.query for r in rows], max(QR_KS), args)
        per_query = qr_metrics([[h.name for h in hits] for hits in ranked], [r.full_name for r in rows])
        table = {"all": {m: float(np.mean(v)) for m, v in per_query.items()}}
        for style in sorted({r.style for r in rows}):
            mask = np.array([r.style == style for r in rows])
            table[style] = {m: float(np.mean(v[mask])) for m, v in per_query.items()}
        in_corpus = np.array([engine.lookup(r.full_name) is not None for r in rows])
        return {
            "benchmark": "MathlibQR",
            "slice": args.slice,
            "n_queries": len(rows),
            "n_targets_in_corpus": int(in_corpus.sum()),
            "mode": args.mode,
            "rerank": args.rerank,
            "metrics": table,
        }
    problems = rows
    texts = [p.nl_statement if args.query_field == "nl" else p.formal_statement for p in problems]
    ranked = _search_all(engine, texts, max(MPR_KS), args)
    scores = mpr_metrics([[h.name for h in hits] for hits in ranked], problems)
    return {
        "benchmark": "MathlibMPR",
        "n_queries": len(problems),
        "query_field": args.query_field,
        "mode": args.mode,
        "rerank": args.rerank,
        "metrics": {"all": scores},
    }


def _human_eval(result: dict[str, Any]) -> str:
    head = {k: v for k, v in result.items() if k != "metrics"}
    lines = [", ".join(f"{k}={v}" for k, v in head.items())]
    for label, metrics in result["metrics"].items():
        lines.append(f"{label:>16}: " + "  ".join(f"{m} {v:.3f}" for m, v in metrics.items()))
    return "\n".join(lines)


def _check_address(host: str, port: int) -> None:
    """Bind `host:port` once, as the server will (same address family, SO_REUSEADDR), so an unknown host or a busy
    port is refused in a second, before the index is loaded or built (minutes the first time); the server binds
    for real afterwards."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror as exc:
        raise ConfigError(f"--host: cannot resolve {host!r}: {exc.strerror or exc}") from None
    except OSError as exc:  # port in use, address not on this machine, no permission
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _serve(args: argparse.Namespace) -> int:
    _check_engine_sources(args)
    _check_address(args.host, args.port)
    engine = _engine(args)
    try:
        server = make_server(engine, args.host, args.port)
    except OSError as exc:  # port in use, unknown host, no permission
        raise ConfigError(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    info = {"url": server.url, "num_docs": len(engine)}
    emit_result(info, as_json=args.json, human=lambda r: f"serving {r['num_docs']} declarations on {r['url']}/")
    # Ctrl-C and SIGTERM (systemd, containers, process managers) both stop the server cleanly with exit 0. Set
    # explicitly: a process started with SIGINT ignored (as some parents leave it) would otherwise not stop on it.
    previous = {sig: signal.signal(sig, _stop_serving) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
    return 0


def _stop_serving(signum: int, frame: object) -> None:
    """Signal handler of `serve`: leave `serve_forever` as Ctrl-C does."""
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("premise-search", quick, args)
    if args.command == "index":
        if args.index_command == "build":
            emit_result(_index_build(args), as_json=args.json, human=_human_kv)
        else:
            directory = args.index or default_index_dir()
            emit_result(
                {"index": str(directory), **_summary(read_manifest(directory))}, as_json=args.json, human=_human_kv
            )
        return 0
    if args.command == "search":
        emit_result(_search(args), as_json=args.json, human=_human_search)
        return 0
    if args.command == "eval":
        emit_result(_eval(args), as_json=args.json, human=_human_eval)
        return 0
    if args.command == "reason":
        emit_result(_reason(args), as_json=args.json, human=_human_reason)
        return 0
    if args.command == "informalize":
        emit_result(_informalize(args), as_json=args.json, human=_human_kv)
        return 0
    if args.command == "serve":
        return _serve(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
