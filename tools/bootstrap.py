#!/usr/bin/env python3
"""Create or refresh the development virtual environment, then run the main job or the tests.

The README's two commands go through this file, so a fresh machine with only Python 3.11 needs nothing else:

    python tools/bootstrap.py reproduce   # `repro reproduce`: every package's quick reproduction -> report/
    python tools/bootstrap.py test        # the whole test suite (pytest), extra arguments passed through

The environment lives in `.venv/` (override with REPRO_VENV). It is rebuilt only when a file that decides its
contents changes (constraints.txt, requirements-dev.txt, any pyproject.toml): a stamp holds their hash, so later
runs start at once. Every install passes `-c constraints.txt`, which pins torch to the local CPU wheel.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("REPRO_VENV", ROOT / ".venv"))
STAMP = VENV / ".repro-stamp"
MIN_PYTHON = (3, 11)


def _inputs() -> list[Path]:
    """Files whose content decides what the environment holds."""
    files = [ROOT / "constraints.txt", ROOT / "requirements-dev.txt", ROOT / "shared" / "pyproject.toml"]
    files += sorted((ROOT / "packages").glob("*/pyproject.toml"))
    return files


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:3]}".encode())
    for path in _inputs():
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)  # type: ignore[arg-type]


def ensure_env(*, quiet: bool = False) -> Path:
    """Return the environment's python, creating or refreshing the environment when its inputs changed."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"error: Python {'.'.join(map(str, MIN_PYTHON))}+ is required, this is {sys.version.split()[0]}")
    wanted = _fingerprint()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"Creating the development environment in {VENV} (first run: about 3 minutes)...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    else:
        print(f"Refreshing {VENV}: constraints, requirements or a pyproject.toml changed...", file=sys.stderr)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}
    pip = [python, "-m", "pip", "install", *(["-q"] if quiet else []), "-c", "constraints.txt"]
    try:
        _run([*pip, "-r", "requirements-dev.txt"], env=env)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"error: installing the development environment failed (exit {exc.returncode}); see pip's output")
    _check_torch(python)
    STAMP.write_text(wanted + "\n")
    return python


def _check_torch(python: Path) -> None:
    """Fail loudly if the resolver ever picked anything but the pinned CPU torch."""
    out = subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=False
    )
    version = out.stdout.strip()
    if out.returncode != 0 or not version.startswith("2.13.0"):
        sys.exit(f"error: expected torch 2.13.0 (CPU) in {VENV}, found {version or out.stderr.strip()!r}")


USAGE = """usage: python tools/bootstrap.py {reproduce,test,env} [ARGS...]

  reproduce [ARGS]  run `repro reproduce` (every package's quick reproduction; writes report/index.md)
  test [ARGS]       run the test suite (python -m pytest ARGS)
  env               only create or refresh the environment and print its python
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in {"reproduce", "test", "env"}:
        print(f"error: unknown command {command!r}\n{USAGE}", end="", file=sys.stderr)
        return 2
    python = ensure_env()
    if command == "env":
        print(python)
        return 0
    if command == "reproduce":
        cmd = [str(python), "-m", "repro_core.umbrella", "reproduce", *rest]
    else:
        cmd = [str(python), "-m", "pytest", *rest]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
