"""Conformance checks every repro package runs in its own tests (in the spirit of scikit-learn's `check_estimator`).

The rules of our CLIs and reproductions are stated once, here, as code: each package's test suite calls these
with its own `main` and `quick`, so a package that breaks a convention fails its own tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points, version
from pathlib import Path

from repro_core.report import ClaimResult, ReproductionContext

__all__ = ["check_package_cli", "check_reproduction", "run_torchrun"]


def _run(main: Callable[[Sequence[str]], int], argv: list[str]) -> tuple[int, str, str]:
    """Run a CLI in-process, capturing stdout and stderr; SystemExit (argparse) becomes the exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def check_package_cli(dist: str, main: Callable[[Sequence[str]], int], tmp_path: Path) -> None:
    """Assert the CLI conventions for distribution `dist`.

    `--help` exits 0 and lists `reproduce`; `--version` prints `<dist> <installed version> (repro-core ...)`;
    `reproduce --json` writes the report and prints JSON that parses, naming only this package; a bad option value
    exits 2 with a one-line message and no traceback.
    """
    code, out, _ = _run(main, ["--help"])
    assert code == 0 and f"usage: {dist}" in out and "reproduce" in out, out
    code, out, _ = _run(main, ["--version"])
    assert code == 0 and out.startswith(f"{dist} {version(dist)} (repro-core "), out
    code, out, err = _run(main, ["reproduce", "--out", str(tmp_path), "--json"])
    assert code == 0, err
    payload = json.loads(out)
    assert [o["package"] for o in payload["outcomes"]] == [dist], payload
    assert (tmp_path / "index.md").is_file() and (tmp_path / "results.json").is_file()
    code, _, err = _run(main, ["reproduce", "--seed", "not-a-number"])
    assert code == 2 and "Traceback" not in err, err


def check_reproduction(
    dist: str, quick: Callable[[ReproductionContext], list[ClaimResult]], tmp_path: Path
) -> list[ClaimResult]:
    """Assert `quick` is registered for `dist` and returns well-formed records; return them for further checks."""
    registered = {ep.name: ep for ep in entry_points(group="repro.reproductions")}
    assert dist in registered, f"{dist} registers no reproduction in 'repro.reproductions'"
    assert registered[dist].load() is quick, f"the entry point of {dist} is not {quick.__module__}.quick"
    results = quick(ReproductionContext(out_dir=tmp_path, seed=0))
    assert isinstance(results, list) and results, "a reproduction returns a non-empty list of ClaimResult"
    for result in results:
        assert isinstance(result, ClaimResult), type(result)
        assert result.claim and result.metric, result
        assert result.verdict is not None
    return results


def run_torchrun(script: Path, *args: str, nproc: int = 2, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """Run `script` under `torchrun --standalone` with `nproc` processes and return the finished process.

    torchrun runs in its own session, so a hung run is killed together with its workers on timeout instead of
    leaving them orphaned; the timeout then raises `TimeoutError`.
    """
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        str(script),
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"the {nproc}-process torchrun of {script} did not finish in {timeout:g} s") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
