"""The bt2-compat skeleton: CLI and reproduction conventions (repro_core.testing), and an honest pending report."""

from __future__ import annotations

from pathlib import Path

from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction

import bt2_compat
from bt2_compat.cli import main
from bt2_compat.reproduction import quick


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("bt2-compat", main, tmp_path)


def test_quick_reproduction_reports_pending_honestly(tmp_path: Path) -> None:
    results = check_reproduction("bt2-compat", quick, tmp_path)
    assert all(r.verdict is Verdict.PENDING and r.our_value is None for r in results)
    assert all("not implemented" in r.note for r in results)
    assert bt2_compat.PAPER.startswith("arXiv:")
