"""repro_core.cli and repro_core.report: exit codes, JSON output, records, Markdown and figures."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from repro_core.cli import EXIT_INPUT_ERROR, emit, make_parser, progress, run_main, to_jsonable
from repro_core.errors import ConfigError, InputError, MissingExtraError
from repro_core.report import ClaimResult, Verdict, markdown_table, plot_paper_vs_ours, write_json


def _parser():
    parser = make_parser("demo", "A demo command.", "1.2.3")
    parser.add_argument("path", nargs="?")
    return parser


def test_input_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def main(args):
        raise InputError("expected an integer, got 'x'", path="data.csv", line=7, field="score")

    assert run_main(main, _parser(), []) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err == "demo: error: data.csv:7 field 'score': expected an integer, got 'x'\n"


def test_missing_file_is_exit_2_without_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def main(args):
        Path(args.path).read_text()

    assert run_main(main, _parser(), [str(tmp_path / "nope.txt")]) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert "nope.txt: No such file or directory" in err and "Traceback" not in err


def test_bugs_keep_their_traceback() -> None:
    def main(args):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_main(main, _parser(), [])


def test_version_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_main(lambda a: 0, _parser(), ["--version"])
    assert info.value.code == 0 and "demo 1.2.3 (repro-core" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        run_main(lambda a: 0, _parser(), ["--no-such-flag"])
    assert info.value.code == 2


def test_emit_json_and_human_results_both_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    emit({"a": np.float64(1.5), "b": [np.int64(2)], "nan": math.nan}, as_json=True)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"a": 1.5, "b": [2], "nan": None} and err == ""
    emit({"a": 1}, as_json=False, human=lambda r: f"a is {r['a']}")
    out, err = capsys.readouterr()
    assert out == "a is 1\n" and err == ""  # `cmd > results.txt` keeps the results


def test_to_jsonable_handles_results() -> None:
    @dataclass
    class Record:
        path: Path
        verdict: Verdict
        values: object

    record = Record(Path("x/y.png"), Verdict.REPRODUCED, torch.tensor([1.0, 2.0]))
    assert to_jsonable(record) == {"path": "x/y.png", "verdict": "reproduced", "values": [1.0, 2.0]}
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_short_progress_is_silent_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_claim_verdicts() -> None:
    assert ClaimResult("c", "m", 0.62, 0.60, tolerance=0.05).verdict is Verdict.REPRODUCED
    assert ClaimResult("c", "m", 0.62, 0.40, tolerance=0.05).verdict is Verdict.DIFFERS
    assert ClaimResult("c", "m", None, 0.40).verdict is Verdict.MEASURED
    assert ClaimResult("c", "m", 0.62, None, tolerance=0.05).verdict is Verdict.PENDING
    assert ClaimResult.pending("c", note="later").verdict is Verdict.PENDING
    assert ClaimResult("c", "m", verdict="failed").verdict is Verdict.FAILED
    with pytest.raises(ValueError, match="tolerance"):
        ClaimResult("c", "m", 1.0, 1.0, tolerance=-1)


def test_markdown_table_escapes_and_formats() -> None:
    rows = [ClaimResult("a | b", "nDCG@10", 0.62, 0.6049, tolerance=0.05, package="premise-search", note="x\ny")]
    table = markdown_table(rows)
    assert table.splitlines()[0].startswith("| package | claim |")
    assert "| premise-search | a \\| b | nDCG@10 | 0.62 | 0.6049 | 0.05 | reproduced | x y |" in table


def test_json_and_figure_writers(tmp_path: Path) -> None:
    rows = [ClaimResult("c1", "m", 1.0, 1.01, tolerance=0.1), ClaimResult("c2", "m", 2.0, 3.0, tolerance=0.1)]
    data = json.loads(write_json(rows, tmp_path / "r.json").read_text())
    assert [r["verdict"] for r in data] == ["reproduced", "differs"]
    figure = plot_paper_vs_ours(rows, tmp_path / "fig" / "scatter.png")
    assert figure is not None and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_paper_vs_ours([ClaimResult.pending("c")], tmp_path / "none.png") is None


def test_error_messages() -> None:
    assert str(InputError("bad")) == "bad"
    assert str(InputError("bad", line=3)) == "line 3: bad"
    assert str(InputError("bad", field="k")) == "field 'k': bad"
    error = MissingExtraError("torch", "torch", "topk_similarity")
    assert isinstance(error, ImportError) and "pip install 'repro-core[torch]'" in str(error)
    assert isinstance(ConfigError("x"), ValueError)
