"""The ntk-permute skeleton: CLI and reproduction conventions (repro_core.testing), and an honest pending report."""

from __future__ import annotations

from pathlib import Path

from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction

import ntk_permute
from ntk_permute.cli import main
from ntk_permute.reproduction import quick


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("ntk-permute", main, tmp_path)


def test_quick_reproduction_reports_pending_honestly(tmp_path: Path) -> None:
    results = check_reproduction("ntk-permute", quick, tmp_path)
    assert all(r.verdict is Verdict.PENDING and r.our_value is None for r in results)
    assert all("not implemented" in r.note for r in results)
    assert ntk_permute.PAPER.startswith("arXiv:")
