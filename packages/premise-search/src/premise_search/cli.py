"""The `premise-search` command line: build and inspect indexes, search, evaluate, reproduce."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.__about__ import __version__
from premise_search.corpus import Declaration, load_default_corpus, read_jsonl
from premise_search.evaluation import MPR_KS, QR_KS, load_mathlib_mpr, load_mathlib_qr, mpr_metrics, qr_metrics
from premise_search.index import default_index_dir, load_index, open_index, read_manifest
from premise_search.reproduction import quick
from premise_search.retrieval import MODES, SearchEngine
from premise_search.scanner import scan_lean_directory
from premise_search.server import DEFAULT_HOST, DEFAULT_PORT, make_server
from repro_core.cli import add_command, make_parser, run_main
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError, InputError
from repro_core.umbrella import add_reproduce_command, reproduce_package

__all__ = ["build_parser", "main"]

DESCRIPTION = """Premise search for Lean 4 (LeanSearch v2, arXiv 2605.13137): standard mode offline.

commands:
  index build   build an index directory (embedded Mathlib subset, JSONL corpora, or .lean sources)
  index info    show an index's manifest
  search        search declarations by a Lean, LaTeX or English query
  eval          MathlibQR (nDCG@k, Recall@k) or MathlibMPR (Recall@k(group), Covered@k) with upstream metrics
  serve         an HTTP server with leansearch.net's API and a search page (127.0.0.1 by default)
  reproduce     this package's quick reproduction (also run by `repro reproduce`)

Without --index, search and eval use the embedded corpus's index, built on first use into
$PREMISE_SEARCH_INDEX_DIR (default ~/.cache/premise-search/default-index).
Not implemented yet: reasoning mode, informalisation."""


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help="index directory (default: the embedded corpus's cached index)")
    parser.add_argument("--corpus", type=Path, nargs="+", help="JSONL(.gz) corpus files to index in memory instead")
    parser.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval channel(s) (default: hybrid)")
    parser.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rerank the top 50 with the feature reranker (default: on)",
    )


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
        epilog="examples:\n  premise-search index build --out idx\n"
        "  premise-search index build --corpus mathlib-full.jsonl.gz batteries.jsonl --out idx\n"
        "  premise-search index build --lean ~/mathlib4/Mathlib --out idx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("--corpus", type=Path, nargs="+", help="JSONL(.gz) corpus files (ours or LeanSearch v2's)")
    build.add_argument("--lean", type=Path, nargs="+", help="folders of .lean sources to scan")
    build.add_argument("--out", type=Path, help="index directory (default: the embedded corpus's cache)")
    build.add_argument("--rebuild", action="store_true", help="rebuild even when the index is current")
    info = add_command(index_commands, "info", help="show an index's manifest")
    info.add_argument("--index", type=Path, help="index directory (default: the embedded corpus's cache)")

    search = add_command(
        commands,
        "search",
        help="search declarations",
        epilog='example:\n  premise-search search "order of an element divides the order of the group" -k 5 --json',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("query", nargs="+", help="one or more queries")
    search.add_argument("-k", type=int, default=10, help="results per query (default: 10)")
    _add_engine_options(search)

    evaluate = add_command(commands, "eval", help="evaluate on MathlibQR or MathlibMPR")
    evaluate.add_argument("benchmark", choices=("qr", "mpr"), help="qr = MathlibQR, mpr = MathlibMPR")
    evaluate.add_argument("--file", type=Path, help="benchmark JSON (default: the shipped LeanSearch v2 file)")
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
    _add_engine_options(evaluate)

    serve = add_command(
        commands,
        "serve",
        help="serve the HTTP API and the search page",
        description="Serve POST /search, /search_with_profile, /fetch, GET /health and the search page at /.",
        epilog="example:\n  premise-search serve --port 8765   # then open http://127.0.0.1:8765/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST}, loopback only)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one (default: {DEFAULT_PORT})"
    )
    serve.add_argument("--index", type=Path, help="index directory (default: the embedded corpus's cached index)")
    serve.add_argument("--corpus", type=Path, nargs="+", help="JSONL(.gz) corpus files to index in memory instead")

    add_reproduce_command(commands)
    return parser


def _gather_corpus(paths: Sequence[Path] | None, lean: Sequence[Path] | None = None) -> list[Declaration]:
    rows: list[Declaration] = []
    for path in paths or ():
        rows.extend(read_jsonl(path))
    for root in lean or ():
        if not root.is_dir():
            raise InputError("not a directory", path=root)
        rows.extend(scan_lean_directory(root))
    return rows


def _engine(args: argparse.Namespace) -> SearchEngine:
    if args.corpus:
        if args.index:
            raise ConfigError("--index and --corpus: give one or the other")
        return SearchEngine.build(_gather_corpus(args.corpus))
    if args.index:
        return load_index(args.index)
    return open_index(default_index_dir(), load_default_corpus())


def _index_build(args: argparse.Namespace) -> dict[str, Any]:
    if args.corpus or args.lean:
        corpus = _gather_corpus(args.corpus, args.lean)
        if not corpus:
            raise InputError("no declarations found in the given corpus files or folders")
        out = args.out
        if out is None:
            raise ConfigError(
                "--out: required with --corpus or --lean (the default directory holds the embedded corpus's index)"
            )
    else:
        corpus, out = load_default_corpus(), args.out or default_index_dir()
    open_index(out, corpus, rebuild=args.rebuild)
    return {"index": str(out), **_summary(read_manifest(out))}


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("format_version", "package_version", "n_docs", "corpus_sha256", "tokenizer", "embedder")
    return {key: manifest.get(key) for key in keys}


def _human_kv(result: dict[str, Any]) -> str:
    return "\n".join(f"{key:>16}: {value}" for key, value in result.items())


def _search(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.k < 1:
        raise ConfigError(f"-k: must be >= 1, got {args.k}")
    engine = _engine(args)
    results = engine.search_batch(args.query, args.k, mode=args.mode, rerank=args.rerank)
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


def _eval(args: argparse.Namespace) -> dict[str, Any]:
    engine = _engine(args)
    if args.benchmark == "qr":
        rows = load_mathlib_qr(args.file)
        if args.slice == "fair":
            rows = [r for r in rows if r.fair]
        ranked = engine.search_batch([r.query for r in rows], max(QR_KS), mode=args.mode, rerank=args.rerank)
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
    problems = load_mathlib_mpr(args.file)
    texts = [p.nl_statement if args.query_field == "nl" else p.formal_statement for p in problems]
    ranked = engine.search_batch(texts, max(MPR_KS), mode=args.mode, rerank=args.rerank)
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


def _serve(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        server = make_server(engine, args.host, args.port)
    except OSError as exc:  # port in use, unknown host, no permission
        raise ConfigError(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    info = {"url": server.url, "num_docs": len(engine)}
    emit_result(info, as_json=args.json, human=lambda r: f"serving {r['num_docs']} declarations on {r['url']}/")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


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
    if args.command == "serve":
        return _serve(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
