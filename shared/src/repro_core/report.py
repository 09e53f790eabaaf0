"""Result records for reproductions, and their JSON, Markdown and figure writers.

A reproduction states each claim of its paper as a `ClaimResult`: the claim in words, the metric, the paper's
value, ours, the tolerance we accept, and the verdict that follows. The umbrella command `repro reproduce` gathers
them from every installed package into `report/index.md`; each package's own CLI prints the same records.
Figures use matplotlib's object API on an Agg canvas (no pyplot global state, no display needed).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from repro_core.checkpoint import atomic_write_text
from repro_core.optional import require
from repro_core.serialization import to_jsonable

__all__ = [
    "ClaimResult",
    "ReproductionContext",
    "ReproductionOutcome",
    "Verdict",
    "difference_from_paper",
    "format_value",
    "markdown_table",
    "new_figure",
    "plot_paper_vs_ours",
    "save_figure",
    "write_json",
]

Value = float | int | str | None


class Verdict(StrEnum):
    """How a claim fared. The value is what reports print; `meaning` is the report's legend for it."""

    REPRODUCED = "reproduced"  # measured, within tolerance of the paper
    DIFFERS = "differs"  # measured, outside the tolerance: explained in the note and the package README
    MEASURED = "measured"  # measured, but the paper gives no comparable number (or no tolerance was set)
    NEEDS_DATA = "needs data"  # implemented, but the data it runs on is not on this machine: the note says how
    PENDING = "pending"  # not implemented yet, or not run for a missing dependency
    FAILED = "failed"  # the reproduction raised an error

    @property
    def meaning(self) -> str:
        """What the verdict tells a reader of the report, in a few words."""
        return _VERDICT_MEANINGS[self]

    @classmethod
    def legend(cls) -> str:
        """One sentence defining every verdict, for the head of a report."""
        return "Verdicts: " + ", ".join(f"*{v.value}* ({v.meaning})" for v in cls) + "."


_VERDICT_MEANINGS = {
    Verdict.REPRODUCED: "within the stated tolerance of the paper",
    Verdict.DIFFERS: "outside it: see the note and the package README",
    Verdict.MEASURED: "no comparable paper number",
    Verdict.NEEDS_DATA: "implemented, but its data is not on this machine: the note says how to get it",
    Verdict.PENDING: "not run: not implemented yet, or an optional dependency is missing (see the note)",
    Verdict.FAILED: "the run raised an error",
}


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ClaimResult:
    """One claim of a paper, checked.

    Attributes:
        claim: the claim in words ("ICoT reaches 100% exact match on 4x4 multiplication").
        metric: what is measured ("exact match", "nDCG@10").
        paper_value: the paper's (or its authors') number; None when the paper gives none.
        our_value: our measurement; None when not measured.
        tolerance: the absolute difference we accept as "reproduced"; None for no judgement.
        verdict: derived from the three above unless given (NEEDS_DATA/PENDING/FAILED must be given).
        package: the distribution that checked it (filled in by `repro reproduce`).
        note: what explains a difference, or what is still missing.
    """

    claim: str
    metric: str
    paper_value: Value = None
    our_value: Value = None
    tolerance: float | None = None
    verdict: Verdict | None = None
    package: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        if self.verdict is None:
            object.__setattr__(self, "verdict", self._judge())
        elif not isinstance(self.verdict, Verdict):
            object.__setattr__(self, "verdict", Verdict(self.verdict))

    def _judge(self) -> Verdict:
        if self.our_value is None:
            return Verdict.PENDING
        if self.tolerance is None or not (_is_number(self.paper_value) and _is_number(self.our_value)):
            return Verdict.MEASURED
        within = abs(float(self.our_value) - float(self.paper_value)) <= self.tolerance  # type: ignore[arg-type]
        return Verdict.REPRODUCED if within else Verdict.DIFFERS

    @classmethod
    def pending(cls, claim: str, *, metric: str = "-", paper_value: Value = None, note: str = "") -> ClaimResult:
        """A claim whose check is not implemented (or not run) yet; when only its data is missing, `needs_data`."""
        return cls(claim=claim, metric=metric, paper_value=paper_value, verdict=Verdict.PENDING, note=note)

    @classmethod
    def needs_data(
        cls, claim: str, *, how_to_get: str, metric: str = "-", paper_value: Value = None, note: str = ""
    ) -> ClaimResult:
        """A claim whose check is implemented but whose data is missing here; `how_to_get` names the command or
        setting that provides the data (required: a reader must learn how to turn the row into a result)."""
        if not how_to_get.strip():
            raise ValueError("how_to_get: say which command or setting provides the data")
        text = f"{note}; {how_to_get}" if note else how_to_get
        return cls(claim=claim, metric=metric, paper_value=paper_value, verdict=Verdict.NEEDS_DATA, note=text)

    def with_package(self, package: str) -> ClaimResult:
        return replace(self, package=package)

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "metric": self.metric,
            "paper_value": self.paper_value,
            "our_value": self.our_value,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "package": self.package,
            "note": self.note,
        }


@dataclass(frozen=True)
class ReproductionContext:
    """What a reproduction gets from the runner: where to write, which seed, how much to run."""

    out_dir: Path
    seed: int = 0
    quick: bool = True

    def figure_path(self, name: str) -> Path:
        """Where to save figure `name` (a PNG in this package's report folder)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / (name if name.endswith(".png") else f"{name}.png")


@dataclass
class ReproductionOutcome:
    """Everything one package's reproduction produced (or why it failed)."""

    package: str
    version: str
    results: list[ClaimResult] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def format_value(value: Value, digits: int = 4) -> str:
    """A table cell: numbers to `digits` significant digits, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(results: Iterable[ClaimResult], *, with_package: bool = True) -> str:
    """A GitHub Markdown table of claims: package, claim, metric, paper, ours, tolerance, verdict, note."""
    header = ["package"] * with_package + ["claim", "metric", "paper", "ours", "tolerance", "verdict", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r.package] * with_package + [
            r.claim,
            r.metric,
            format_value(r.paper_value),
            format_value(r.our_value),
            format_value(r.tolerance),
            r.verdict.value if r.verdict else "",
            r.note,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_json(payload: Any, path: str | os.PathLike[str]) -> Path:
    """Write `payload` (records, outcomes, dicts) as indented JSON, atomically."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return Path(path)


def new_figure(width: float = 6.0, height: float = 4.0) -> Any:
    """A matplotlib `Figure` on an Agg canvas (no pyplot, no display, safe in threads and tests)."""
    require("matplotlib", "repro_core.report figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Save `figure` as PNG to `path` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return path


#: Below this |paper value| the summary chart shows absolute differences, from it relative ones (see below).
RELATIVE_FROM = 1.0


def difference_from_paper(paper: float, ours: float) -> float:
    """How far ours is from the paper on the summary chart: `ours - paper` when |paper| < 1, else relative.

    Most claims are rates in [0, 1] (accuracy, exact match, nDCG, alpha), where the readable difference is the
    absolute one: exact match 0 against the paper's 0.01 is 0.01 below, not "-100%". Counts and other values of 1
    or more differ in scale, so they are compared relatively, `(ours - paper) / |paper|`. Dividing by
    `max(|paper|, 1)` does both with one formula, and the two agree at |paper| = 1.
    """
    return (ours - paper) / max(abs(paper), RELATIVE_FROM)


def _claim_label(result: ClaimResult, width: int = 70) -> str:
    """The whole claim (prefixed with its package), wrapped at `width` characters, never cut."""
    import textwrap

    text = f"{result.package + ': ' if result.package else ''}{result.claim}"
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def plot_paper_vs_ours(
    results: Sequence[ClaimResult], path: str | os.PathLike[str], *, title: str = "Ours against the paper"
) -> Path | None:
    """One bar per numeric claim: how far our value is from the paper's (`difference_from_paper`), by verdict.

    Claims span many magnitudes (counts in thousands, rates near 0.01), so a paper-vs-ours scatter hides every
    difference; the differences, absolute for |paper| < 1 and relative above, on a symmetric-log axis show them
    all. Each bar is labelled with the whole claim (wrapped) and both numbers. Returns None when no claim has both.
    """
    points = [r for r in results if _is_number(r.paper_value) and _is_number(r.our_value)]
    if not points:
        return None
    labels = [_claim_label(r) for r in points]
    lines = sum(label.count("\n") + 1 for label in labels)
    figure = new_figure(11.0, 1.4 + 0.22 * lines + 0.1 * len(points))
    from matplotlib.patches import Patch

    diffs = [difference_from_paper(float(r.paper_value), float(r.our_value)) for r in points]  # type: ignore[arg-type]
    colours = {Verdict.REPRODUCED: "tab:green", Verdict.DIFFERS: "tab:red", Verdict.MEASURED: "tab:blue"}
    axes = figure.add_subplot()
    rows = range(len(points))
    axes.barh(rows, diffs, color=[colours.get(r.verdict, "grey") for r in points])  # type: ignore[arg-type]
    axes.axvline(0.0, color="black", linewidth=0.8)
    for row, r, diff in zip(rows, points, diffs, strict=True):  # the numbers, on the side away from the bar
        axes.annotate(
            f"ours {format_value(r.our_value)}, paper {format_value(r.paper_value)}",
            (0.0, row),
            xytext=(-4 if diff > 0 else 4, 0),
            textcoords="offset points",
            ha="right" if diff > 0 else "left",
            va="center",
            fontsize=6,
            color="dimgrey",
        )
    axes.set_yticks(list(rows), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("symlog", linthresh=1e-3)
    axes.set_xlabel(
        "ours - paper where |paper| < 1, (ours - paper) / |paper| where |paper| >= 1\n"
        "(symmetric log scale, linear within ±0.001)",
        fontsize=8,
    )
    axes.set_title(title)
    handles = [Patch(color=c, label=v.value) for v, c in colours.items() if any(r.verdict is v for r in points)]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    return save_figure(figure, path)
