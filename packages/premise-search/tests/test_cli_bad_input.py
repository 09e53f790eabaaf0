"""Every subcommand refuses bad input with one line and exit 2, and results go to stdout (issue #13).

The harness (`repro_core.testing.check_cli_rejects_bad_input`) replaces one option of a valid case at a time with
bad values and files. The cases use the small test corpus (in memory, or an index built in `tmp_path`), never the
index of all of Mathlib, so the whole check takes seconds.
"""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import premise_search.cli as cli
from premise_search.cli import build_parser, main
from premise_search.corpus import Declaration, write_jsonl
from premise_search.index import open_index
from premise_search.retrieval import SearchEngine
from repro_core.testing import check_cli_rejects_bad_input, run_cli

FORMAL = "theorem orderOf_dvd_card' [Fintype G] (x : G) : orderOf x ∣ Fintype.card G"
INFORMAL = "the order of an element divides the order of the group"


@pytest.fixture
def corpus_file(small_corpus: list[Declaration], tmp_path: Path) -> Path:
    return write_jsonl(small_corpus, tmp_path / "corpus.jsonl")


def _valid_cases(tmp_path: Path, corpus: Path, small_corpus: list[Declaration]) -> dict[str, list[str]]:
    """A valid argv per subcommand: small inputs in `tmp_path`, outputs inside it."""
    index = tmp_path / "index"
    open_index(index, small_corpus)
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps({"formal_statement": FORMAL, "informal_statement": INFORMAL}))
    mpr = tmp_path / "mpr.json"
    groups = [{"kind": "original", "docs": ["orderOf_dvd_card"]}]
    mpr.write_text(json.dumps([{"id": "p1", "NL_main_result": INFORMAL, "premise_group": groups}]))
    return {
        "index build": ["--corpus", str(corpus), "--out", str(tmp_path / "built")],
        "index info": ["--index", str(index)],
        "search": ["lattice", "-k", "2", "--corpus", str(corpus), "--mode", "bm25"],
        "reason": ["--statement-file", str(problem), "--corpus", str(corpus), "-k", "3", "--big-loop", "0"],
        "informalize": ["--corpus", str(corpus), "--out", str(tmp_path / "informal.jsonl"), "--limit", "2"],
        "eval": ["mpr", "--file", str(mpr), "--corpus", str(corpus), "--mode", "bm25"],
        # never run as it stands (it would serve until stopped): every mutation of it is refused before binding
        "serve": ["--corpus", str(corpus), "--port", "0"],
        "reproduce": ["--out", str(tmp_path / "report")],
    }


def test_every_subcommand_refuses_bad_input(small_corpus: list[Declaration], corpus_file: Path, tmp_path: Path) -> None:
    cases = _valid_cases(tmp_path, corpus_file, small_corpus)
    counts = check_cli_rejects_bad_input(build_parser(), main, cases, tmp_path, max_examples=60)
    print(f"\nbad-input cases per subcommand: {counts}")
    assert set(counts) == set(cases) and all(counts[words] > 0 for words in cases), counts
    # the cases themselves are valid (serve would not return; reproduce is run by test_cli), so each refusal above
    # came from the one bad value
    for words in ("index build", "index info", "search", "reason", "informalize", "eval"):
        result = run_cli(main, [*words.split(), *cases[words], "-q"])
        assert result.code == 0 and result.stdout and not result.stderr, (words, result)


def test_search_prints_hits_on_stdout(corpus_file: Path) -> None:
    """`premise-search search ... > hits.txt` keeps the hits: they went to stderr and the file was empty."""
    result = run_cli(main, ["search", "lattice", "--corpus", str(corpus_file), "--mode", "bm25", "--no-rerank"])
    assert result.code == 0, result.stderr
    assert "query: lattice" in result.stdout and "Lattice" in result.stdout
    assert "Lattice" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "lattice", "-q"],
        ["index", "info", "-q"],
        ["reason", "--informal", INFORMAL, "-k", "2", "-q"],
        ["eval", "mpr", "--mode", "bm25", "-q"],
    ],
)
def test_results_on_stdout_and_nothing_on_stderr_under_quiet(
    argv: list[str], small_corpus: list[Declaration], corpus_file: Path, tmp_path: Path
) -> None:
    source = ["--corpus", str(corpus_file)]
    if argv[0] == "index":
        open_index(tmp_path / "idx", small_corpus)
        source = ["--index", str(tmp_path / "idx")]
    result = run_cli(main, [*argv, *source])
    assert result.code == 0 and result.stdout.strip() and result.stderr == "", result


class _RecordingBar:
    """Stands in for `repro_core.cli.progress`: records the stages; shown disabled, as under the old bar on a pipe."""

    def __init__(self, stages: list[str], desc: str | None) -> None:
        stages.append(desc or "")
        self.n, self.disable = 0, True

    def __enter__(self) -> _RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self.n += n


def test_index_build_reports_stages_through_progress_only(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each build stage gets a `progress` bar; no ad-hoc `index build: <stage>` lines are printed on stderr."""
    stages: list[str] = []
    monkeypatch.setattr(cli, "progress", lambda *a, desc=None, **k: _RecordingBar(stages, desc))
    result = run_cli(main, ["index", "build", "--corpus", str(corpus_file), "--out", str(tmp_path / "idx")])
    assert result.code == 0 and "n_docs" in result.stdout, result
    assert len(stages) >= 2 and "index build:" not in result.stderr and result.stderr == "", (stages, result)


def _refuse_to_build(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the engine was built before the server address was checked")


def test_serve_refuses_a_busy_port_before_loading_the_index(corpus_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SearchEngine, "build", _refuse_to_build)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(main, ["serve", "--corpus", str(corpus_file), "--port", str(port)])
    assert result.code == 2 and not result.stdout, result
    assert len(result.stderr.splitlines()) == 1 and "cannot listen" in result.stderr, result.stderr


@pytest.mark.parametrize("option", [["--host", "not a host"], ["--host", ""], ["--port", "65536"], ["--port", "-1"]])
def test_serve_refuses_a_bad_address_in_one_line(
    option: list[str], corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SearchEngine, "build", _refuse_to_build)
    result = run_cli(main, ["serve", "--corpus", str(corpus_file), *option])
    assert result.code == 2 and not result.stdout and len(result.stderr.splitlines()) == 1, result
    assert "Traceback" not in result.stderr


def _refused(argv: list[str]) -> str:
    result = run_cli(main, argv)
    assert result.code == 2 and not result.stdout, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_corpus_line_that_is_not_utf8_is_named_by_file_and_line(corpus_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(corpus_file.read_bytes().split(b"\n", 1)[0] + b'\n{"name": "caf\xe9", "kind": "def"}\n')
    assert "bad.jsonl:2: not UTF-8" in _refused(["search", "x", "--corpus", str(bad)])


def test_a_damaged_gzip_corpus_is_an_input_error(corpus_file: Path, tmp_path: Path) -> None:
    packed = gzip.compress(corpus_file.read_bytes())
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    assert "cut.jsonl.gz" in _refused(["index", "build", "--corpus", str(truncated), "--out", str(tmp_path / "i")])
    assert not (tmp_path / "i").exists()
    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_bytes(corpus_file.read_bytes())
    assert "plain.jsonl.gz:1: not a readable gzip file" in _refused(["search", "x", "--corpus", str(not_gzip)])


def test_a_statement_file_that_is_not_utf8_is_an_input_error(corpus_file: Path, tmp_path: Path) -> None:
    lean = tmp_path / "thm.lean"
    lean.write_bytes(b"theorem x : True :=\n  -- caf\xe9\n  trivial\n")
    assert "thm.lean:2: not UTF-8" in _refused(["reason", "--statement-file", str(lean), "--corpus", str(corpus_file)])


def test_an_empty_lean_folder_or_corpus_file_is_refused(corpus_file: Path, tmp_path: Path) -> None:
    """One empty source among good ones used to be dropped silently (an index without the user's declarations)."""
    (tmp_path / "no-lean").mkdir()
    (tmp_path / "no-lean" / "README.md").write_text("no Lean here\n")
    out = tmp_path / "idx"
    line = _refused(
        ["index", "build", "--corpus", str(corpus_file), "--lean", str(tmp_path / "no-lean"), "--out", str(out)]
    )
    assert "no-lean: no declarations" in line and not out.exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "empty.jsonl: no declarations" in _refused(["search", "x", "--corpus", str(corpus_file), str(empty)])


@pytest.mark.parametrize("benchmark", ["qr", "mpr"])
def test_an_empty_benchmark_is_refused_instead_of_scoring_nan(
    benchmark: str, corpus_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "bench.json"
    empty.write_text("[]")
    argv = ["eval", benchmark, "--file", str(empty), "--corpus", str(corpus_file), "--mode", "bm25", "--json"]
    assert "bench.json: no Mathlib" in _refused(argv)


def test_a_qr_file_with_no_fair_row_is_refused_in_the_fair_slice(corpus_file: Path, tmp_path: Path) -> None:
    qr = tmp_path / "qr.json"
    qr.write_text(json.dumps([{"id": 1, "full_name": "Not.In.Shared171", "q1c_natural": "a lattice"}]))
    argv = ["eval", "qr", "--file", str(qr), "--corpus", str(corpus_file), "--mode", "bm25"]
    assert "no MathlibQR query" in _refused(argv)
    full = run_cli(main, [*argv, "--slice", "full", "--json"])
    assert full.code == 0 and json.loads(full.stdout)["n_queries"] == 1, full


def test_eval_shows_search_progress_with_unchanged_scores(
    small_corpus: list[Declaration], corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hybrid eval searches in chunks under a progress bar; the scores equal those of one whole batch."""
    from premise_search.evaluation import MPR_KS, load_mathlib_mpr, mpr_metrics

    stages: list[str] = []
    monkeypatch.setattr(cli, "progress", lambda *a, desc=None, **k: _RecordingBar(stages, desc))
    result = run_cli(main, ["eval", "mpr", "--corpus", str(corpus_file), "--json"])
    assert result.code == 0, result.stderr
    problems = load_mathlib_mpr()
    assert len(problems) > 64  # more than one chunk
    whole = SearchEngine.build(small_corpus).search_batch(
        [p.nl_statement for p in problems], max(MPR_KS), mode="hybrid", rerank=True
    )
    expected = mpr_metrics([[h.name for h in hits] for hits in whole], problems)
    assert json.loads(result.stdout)["metrics"]["all"] == expected
    assert "search" in stages
