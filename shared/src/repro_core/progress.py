"""Progress bars on stderr for long library calls (training epochs, index builds, report figures).

A library module, not CLI plumbing: library functions take `show_progress=True` and call `progress` themselves, so
it lives below `repro_core.cli` (which re-exports it) in the layering. It never writes to stdout.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["PROGRESS_INTERVAL_ENV", "progress"]

T = TypeVar("T")

#: Seconds between progress lines when stderr is not a terminal (default 5).
PROGRESS_INTERVAL_ENV = "REPRO_PROGRESS_INTERVAL"


class _LineStream:
    """What tqdm writes, as whole lines: for logs and pipes, where carriage-return redraws pile up unreadably."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()


def _progress_interval() -> float:
    try:
        return max(0.1, float(os.environ.get(PROGRESS_INTERVAL_ENV, "5")))
    except ValueError:
        return 5.0


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool | None = None,
    leave: bool = False,
) -> Any:
    """A progress bar on stderr (tqdm).

    On a terminal it is a live bar. Elsewhere (CI logs, `2> log`) it prints one plain line every
    `$REPRO_PROGRESS_INTERVAL` seconds (5 by default) once the work has lasted that long, so short steps print
    nothing and long ones show they are alive. `disable=None` hides it under `-q` (logging quieter than WARNING).
    Works as an iterable wrapper or, without `iterable`, as a context manager with `.update(n)`.
    """
    from tqdm.auto import tqdm

    if disable is None:
        disable = logging.getLogger().getEffectiveLevel() > logging.WARNING
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, file=sys.stderr)
    interval = _progress_interval()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=disable,
        leave=True,
        file=_LineStream(sys.stderr),
        mininterval=interval,
        maxinterval=interval,
        delay=interval,
        ascii=True,
        ncols=100,
    )
