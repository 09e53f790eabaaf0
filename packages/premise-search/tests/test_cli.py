"""The premise-search CLI (repro_core conventions, index, search, eval) and the quick reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import premise_search
from premise_search.cli import main
from premise_search.corpus import Declaration, write_jsonl
from premise_search.reproduction import quick
from premise_search.retrieval import SearchEngine
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction, run_cli


@pytest.fixture(scope="module")
def decls(small_corpus: list[Declaration]) -> list[Declaration]:
    """The first three declarations of the shared small corpus (the CLI tests count and rank them)."""
    return [d for d in small_corpus if d.name in ("orderOf_dvd_card", "Lattice", "Nat.Prime.two_le")]


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("premise-search", main, tmp_path)


def test_quick_reproduction_measures_the_standard_mode(tmp_path: Path) -> None:
    results = check_reproduction("premise-search", quick, tmp_path)
    by_metric = {(r.metric, r.claim.split(":")[0]): r for r in results}
    standard = by_metric[("nDCG@10", "standard mode")]
    assert standard.paper_value == 0.62 and isinstance(standard.our_value, float)
    assert 0.2 < standard.our_value < 0.62  # offline lexical models on a subset; see the README
    assert standard.verdict is Verdict.DIFFERS and "different corpus and models" in standard.note
    reasoning = [r for r in results if r.claim.startswith("reasoning mode")]
    assert len(reasoning) == 1 and reasoning[0].paper_value == 46.1 and reasoning[0].verdict is Verdict.DIFFERS
    assert isinstance(reasoning[0].our_value, float) and 10.0 < reasoning[0].our_value < 46.1  # offline planner
    assert premise_search.PAPER.startswith("arXiv:")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_index_build_info_and_search(
    decls: list[Declaration], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_jsonl(decls, tmp_path / "c.jsonl")
    built = _json(capsys, ["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--json"])
    assert isinstance(built, dict) and built["n_docs"] == len(decls)
    info = _json(capsys, ["index", "info", "--index", str(tmp_path / "idx"), "--json"])
    assert isinstance(info, dict) and info["corpus_sha256"] == built["corpus_sha256"]
    query = "order of an element divides the order of the group"
    out = _json(capsys, ["search", query, "-k", "2", "--index", str(tmp_path / "idx"), "--json"])
    library = SearchEngine.build(decls).search(query, 2, rerank=True)
    assert isinstance(out, list) and [h["name"] for h in out[0]["results"]] == [h.name for h in library]
    assert out[0]["results"][0]["name"] == "orderOf_dvd_card"
    assert main(["search", "lattice", "--corpus", str(corpus), "--mode", "bm25", "--no-rerank"]) == 0
    assert "Lattice" in capsys.readouterr().out  # results on stdout, so `search ... > hits.txt` keeps them


def test_eval_on_a_small_corpus(decls: list[Declaration], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_jsonl(decls, tmp_path / "c.jsonl")
    out = _json(capsys, ["eval", "mpr", "--corpus", str(corpus), "--mode", "bm25", "--json"])
    assert isinstance(out, dict) and out["n_queries"] == 69 and "Recall@10(group)" in out["metrics"]["all"]


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "x", "-k", "0", "--corpus", "MISSING.jsonl"],
        ["search", "x", "--corpus", "MISSING.jsonl"],
        ["index", "info", "--index", "no-such-index"],
        ["index", "build", "--corpus", "MISSING.jsonl"],
    ],
)
def test_bad_input_exits_2(argv: list[str]) -> None:
    code, out, err = run_cli(main, argv)
    assert code == 2 and not out and len(err.splitlines()) == 1
    assert "Traceback" not in err and "error:" in err
