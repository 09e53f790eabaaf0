"""Training dynamics per answer position (spec 4.10): the quantities, the authors' CSV log layout, and plots.

Every `dynamics_every` steps `mult_probe.train.position_dynamics` takes the step's batch (dropout off, before the
update) and, for each answer position t (the cross entropy L_t of digit c_t, batch mean), the gradient
g_t = dL_t/dtheta over the model's parameters. Everything below follows from the Gram matrix G_ts = g_t . g_s
(`gradient_statistics`), with K answer positions and L = (1/K) sum_t L_t the answer loss:

    loss_per_pos[t]        L_t
    loss_total             L (the mean of the K answer-position losses; in the aux log the LM part only)
    grad_norm_per_pos[t]   ||g_t||
    grad_norm_total        ||g||, g = dL/dtheta = (1/K) sum_t g_t
    grad_ratio_per_pos[t]  ||g_t|| / ||sum_{s != t} g_s||: the target digit's gradient against the rest's
    cos_per_pos[t]         cos(g_t, sum_{s != t} g_s): whether the rest's gradient pushes the same way as t's
    dd_per_pos[t]          g_t . g / ||g||: the directional derivative of L_t along the total gradient, so a
                           gradient-descent step of length eta on L lowers L_t by about eta * dd_t (< 0: it raises)
    handle_ratio           ||sum_t g_t||^2 / sum_t ||g_t||^2: 1 when the positions' gradients are orthogonal on
                           average, up to K when they all align, below 1 when they cancel

The authors' released logs (`grad_probe_log.csv`, spec 3.4) use these column names, but their definitions of
`grad_ratio`, `handle_ratio`, `dd` and `cos` are unpublished: the ones above are ours, from first principles.

Position order. In memory (`DynamicsLog.per_position`, the training history) index t is digit c_t, c_0 the least
significant. In the CSV, as in the authors' files, list-valued columns run from the **last digit**:
`[c_{K-1}, ..., c_1, c_0]` (their plotting script reverses them). `write_dynamics_csv` and `read_dynamics_csv`
convert, so both logs compare position by position.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repro_core.errors import InputError

__all__ = [
    "COLUMNS",
    "DEFAULT_THRESHOLD",
    "PER_POSITION_COLUMNS",
    "DynamicsLog",
    "gradient_statistics",
    "log_from_history",
    "plot_dynamics",
    "read_dynamics_csv",
    "summary",
    "write_dynamics_csv",
]

#: The authors' column order (spec 3.4): a `step` column, scalars, and list-valued per-position columns.
COLUMNS = (
    "step",
    "loss_total",
    "loss_per_pos",
    "grad_norm_total",
    "grad_norm_per_pos",
    "grad_ratio_per_pos",
    "handle_ratio",
    "dd_per_pos",
    "cos_per_pos",
)
PER_POSITION_COLUMNS = tuple(name for name in COLUMNS if name.endswith("_per_pos"))
SCALAR_COLUMNS = ("loss_total", "grad_norm_total", "handle_ratio")
#: "Learned" in spec 6.2's order of learning: the first logged step whose position loss is below this.
DEFAULT_THRESHOLD = 0.05


def gradient_statistics(position_loss: Sequence[float], gram: np.ndarray) -> dict[str, Any]:
    """Every logged quantity (module docstring) from the per-position losses and the Gram matrix of their gradients.

    Lists are indexed by position t = 0 .. K-1 (c_0 first). A zero denominator (a position with no gradient, or
    K = 1 without a "rest") gives NaN for that ratio rather than an exception.
    """
    gram = np.asarray(gram, dtype=np.float64)
    k = len(position_loss)
    if gram.shape != (k, k):
        raise ValueError(f"gram must be [{k}, {k}] for {k} positions, got {list(gram.shape)}")
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    row_sums = gram.sum(axis=1)  # g_t . sum_s g_s
    everything = float(gram.sum())  # ||sum_s g_s||^2
    rest_dot = row_sums - np.diag(gram)  # g_t . sum_{s != t} g_s
    rest_sq = np.clip(everything - 2 * row_sums + np.diag(gram), 0.0, None)  # ||sum_{s != t} g_s||^2
    rest_norm = np.sqrt(rest_sq)
    total_norm = math.sqrt(max(everything, 0.0)) / k

    def ratio(num: np.ndarray, den: np.ndarray) -> list[float]:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return [float(x) for x in out]

    diagonal_sum = float(np.trace(gram))
    return {
        "position_loss": [float(x) for x in position_loss],
        "loss_total": float(np.mean(position_loss)),
        "grad_norm": [float(x) for x in norms],
        "grad_norm_total": total_norm,
        "grad_ratio": ratio(norms, rest_norm),
        "cos": ratio(rest_dot, norms * rest_norm),
        "dd": ratio(row_sums / k, np.full(k, total_norm)),
        "handle_ratio": everything / diagonal_sum if diagonal_sum > 0 else math.nan,
    }


#: CSV column -> key of `position_dynamics`'s dict (the training history's `dynamics` entries).
_HISTORY_KEYS = {
    "loss_total": "loss_total",
    "loss_per_pos": "position_loss",
    "grad_norm_total": "grad_norm_total",
    "grad_norm_per_pos": "grad_norm",
    "grad_ratio_per_pos": "grad_ratio",
    "handle_ratio": "handle_ratio",
    "dd_per_pos": "dd",
    "cos_per_pos": "cos",
}


@dataclass(frozen=True)
class DynamicsLog:
    """A dynamics log in memory: one row per logged step; per-position arrays `[n_steps, K]`, c_0 first."""

    steps: np.ndarray  #: [n] logged steps (1-based optimiser steps; the authors' `step` column)
    scalars: dict[str, np.ndarray]  #: loss_total, grad_norm_total, handle_ratio (those present), each [n]
    per_position: dict[str, np.ndarray]  #: the `*_per_pos` columns present, each [n, K], column t = c_t
    source: str = ""  #: where it came from (a path, or "history")
    label: str = ""  #: legend name in plots
    extra: dict[str, Any] = field(default_factory=dict)  #: columns beyond the authors' (kept, not interpreted)

    @property
    def n_positions(self) -> int:
        return int(self.per_position["loss_per_pos"].shape[1])

    def first_step_below(self, threshold: float = DEFAULT_THRESHOLD, column: str = "loss_per_pos") -> list[int | None]:
        """Per position c_0 .. c_{K-1}: the first logged step whose value is below `threshold` (None: never)."""
        values = self.per_position[column]
        out: list[int | None] = []
        for t in range(values.shape[1]):
            below = np.flatnonzero(values[:, t] < threshold)
            out.append(int(self.steps[below[0]]) if below.size else None)
        return out

    def final(self, column: str = "loss_per_pos") -> list[float]:
        """The last logged row of a per-position column, c_0 first."""
        return [float(x) for x in self.per_position[column][-1]]


def log_from_history(history: Iterable[Mapping[str, Any]], *, label: str = "ours") -> DynamicsLog:
    """The `dynamics` entries of a training history (`TrainResult.history`, a checkpoint's `history`)."""
    rows = [(int(entry["step"]), entry["dynamics"]) for entry in history if "dynamics" in entry]
    if not rows:
        raise InputError("no dynamics in this run's history (train with --dynamics-every N)")
    steps = np.array([step for step, _ in rows], dtype=np.int64)
    scalars, per_position = {}, {}
    for column, key in _HISTORY_KEYS.items():
        if not all(key in d for _, d in rows):
            continue  # histories written before a quantity existed lack it
        values = np.array([d[key] for _, d in rows], dtype=np.float64)
        (per_position if column in PER_POSITION_COLUMNS else scalars)[column] = values
    return DynamicsLog(steps=steps, scalars=scalars, per_position=per_position, source="history", label=label)


def _format(value: float) -> str:
    return repr(float(value))  # shortest round-tripping text; nan and inf as Python writes them


def write_dynamics_csv(log: DynamicsLog, path: str | os.PathLike[str]) -> Path:
    """Write `log` in the authors' layout (`COLUMNS`; lists `[c_{K-1}, ..., c_0]`), atomically."""
    from repro_core.checkpoint import atomic_write_text

    columns = [c for c in COLUMNS if c == "step" or c in log.scalars or c in log.per_position]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for i, step in enumerate(log.steps):
        row: list[str] = []
        for column in columns:
            if column == "step":
                row.append(str(int(step)))
            elif column in log.scalars:
                row.append(_format(log.scalars[column][i]))
            else:
                values = log.per_position[column][i][::-1]  # the authors' order: last digit first
                row.append("[" + ", ".join(_format(v) for v in values) + "]")
        writer.writerow(row)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


def _parse_list(text: str, bad: Any) -> list[float]:
    inner = text.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        raise bad(f"expected a list like '[0.1, 0.2]', got {text[:40]!r}")
    parts = [p for p in inner[1:-1].replace(",", " ").split() if p]
    if not parts:
        raise bad("empty list")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise bad(f"not a list of numbers: {text[:40]!r}") from None


def read_dynamics_csv(path: str | os.PathLike[str], *, label: str | None = None) -> DynamicsLog:
    """Read a log in the authors' layout (theirs, or one of ours): `step`, `loss_per_pos` required.

    Lists are read as `[c_{K-1}, ..., c_0]` (numbers separated by commas or spaces, as pandas or numpy write them)
    and stored c_0 first. Other authors' columns are optional; unknown columns are kept in `extra` as text. A
    file that breaks the layout raises `InputError` naming the line and column.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte at offset {exc.start})", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a CSV file", path=path) from None
    reader = csv.reader(io.StringIO(text.replace("\r\n", "\n")))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise InputError("empty file, expected a header with 'step' and 'loss_per_pos'", path=path)
    header = [cell.strip() for cell in header]
    for required in ("step", "loss_per_pos"):
        if required not in header:
            raise InputError(f"no {required!r} column (header: {', '.join(header)[:120]})", path=path, line=1)
    steps: list[int] = []
    scalars: dict[str, list[float]] = {c: [] for c in SCALAR_COLUMNS if c in header}
    per_position: dict[str, list[list[float]]] = {c: [] for c in PER_POSITION_COLUMNS if c in header}
    extra: dict[str, list[str]] = {c: [] for c in header if c not in COLUMNS}
    width: int | None = None
    for line_no, row in enumerate(reader, 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields, the header has {len(header)}", path=path, line=line_no)
        for column, cell in zip(header, row, strict=True):

            def bad(message: str, column: str = column, line_no: int = line_no) -> InputError:
                return InputError(message, path=path, line=line_no, field=column)

            if column == "step":
                try:
                    step = int(float(cell))
                except ValueError:
                    raise bad(f"not a step number: {cell[:40]!r}") from None
                if steps and step <= steps[-1]:
                    raise bad(f"step {step} does not follow step {steps[-1]} (steps must increase)")
                steps.append(step)
            elif column in per_position:
                values = _parse_list(cell, bad)
                if width is None:
                    width = len(values)
                elif len(values) != width:
                    raise bad(f"{len(values)} positions, earlier lists have {width}")
                per_position[column].append(values[::-1])  # file order c_{K-1}..c_0 -> c_0 first
            elif column in scalars:
                if cell.strip().startswith("["):  # a per-position handle_ratio: keep it per position
                    values = _parse_list(cell, bad)
                    per_position.setdefault(column, []).append(values[::-1])
                    scalars[column].append(float(np.mean(values)))
                    continue
                try:
                    scalars[column].append(float(cell))
                except ValueError:
                    raise bad(f"not a number: {cell[:40]!r}") from None
            else:
                extra[column].append(cell)
    if not steps:
        raise InputError("no rows after the header", path=path)
    return DynamicsLog(
        steps=np.array(steps, dtype=np.int64),
        scalars={c: np.array(v, dtype=np.float64) for c, v in scalars.items()},
        per_position={c: np.array(v, dtype=np.float64) for c, v in per_position.items()},
        source=str(path),
        label=path.stem if label is None else label,
        extra=extra,
    )


def summary(log: DynamicsLog, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Numbers behind a plot: positions, steps logged, first step below `threshold` and final loss per position."""
    return {
        "source": log.source,
        "positions": log.n_positions,
        "logged_steps": len(log.steps),
        "last_step": int(log.steps[-1]),
        "first_step_below": log.first_step_below(threshold),
        "final_loss": log.final(),
    }


def plot_dynamics(logs: Sequence[DynamicsLog], *, threshold: float = DEFAULT_THRESHOLD) -> Any:
    """One column per log: per-position loss curves (log scale; the first step below `threshold` marked) over a
    heatmap of the per-position gradient norm x step (log colour), as the paper's training-dynamics figure."""
    from matplotlib.colors import LogNorm

    from repro_core.report import new_figure

    figure = new_figure(width=4.8 * len(logs), height=6.0)
    axes = figure.subplots(2, len(logs), squeeze=False)
    for column, log in enumerate(logs):
        loss_axis, heat_axis = axes[0][column], axes[1][column]
        losses = log.per_position["loss_per_pos"]
        first = log.first_step_below(threshold)
        colours = [f"C{t % 10}" for t in range(log.n_positions)]
        for t in range(log.n_positions):
            floor = np.clip(losses[:, t], 1e-7, None)  # a loss of exactly 0 (the authors' c0) on a log axis
            loss_axis.plot(log.steps, floor, color=colours[t], linewidth=1.0, label=f"c{t}")
            if first[t] is not None:
                index = int(np.flatnonzero(log.steps == first[t])[0])
                loss_axis.plot([first[t]], [floor[index]], marker="o", color=colours[t], markersize=5)
        loss_axis.axhline(threshold, color="grey", linestyle=":", linewidth=0.8)
        loss_axis.set_yscale("log")
        loss_axis.set_xlabel("step")
        loss_axis.set_ylabel("loss per answer position")
        loss_axis.set_title(
            f"{log.label or log.source}: {len(log.steps)} logged steps\n(dot: first step below {threshold:g})",
            fontsize=9,
        )
        loss_axis.legend(fontsize=7, ncol=2)
        loss_axis.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))  # 624,500 steps: x 10^5 ticks
        if "grad_norm_per_pos" in log.per_position:
            norms = np.clip(log.per_position["grad_norm_per_pos"].T, 1e-12, None)  # [K, n], row t = c_t
            steps = log.steps.astype(np.float64)
            # cell edges halfway between logged steps: the authors log irregular spans as well as regular ones
            middle = (steps[1:] + steps[:-1]) / 2
            first_gap = steps[1] - steps[0] if len(steps) > 1 else 1.0
            last_gap = steps[-1] - steps[-2] if len(steps) > 1 else 1.0
            edges = np.concatenate([[steps[0] - first_gap / 2], middle, [steps[-1] + last_gap / 2]])
            image = heat_axis.pcolormesh(
                edges,
                np.arange(log.n_positions + 1) - 0.5,
                norms,
                norm=LogNorm(vmin=float(norms.min()), vmax=float(norms.max())),
                shading="flat",
            )
            heat_axis.set_yticks(range(log.n_positions), [f"c{t}" for t in range(log.n_positions)])
            heat_axis.set_xlim(float(steps[0]), float(steps[-1]))
            heat_axis.set_xlabel("step")
            heat_axis.set_title("gradient norm ||dL_t/dtheta|| (log colour)", fontsize=9)
            heat_axis.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))
            figure.colorbar(image, ax=heat_axis)
        else:
            heat_axis.set_axis_off()
            heat_axis.text(0.5, 0.5, "no grad_norm_per_pos column", ha="center", va="center")
    return figure
