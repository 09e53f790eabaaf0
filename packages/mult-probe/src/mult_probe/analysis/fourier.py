"""Fourier-basis fits of digit representations (spec 4.7, the authors' `fourier_r2_fits.py`).

A representation indexed by the digit n = 0..9 is a matrix whose rows are 10-vectors. Each row x is fitted by least
squares with the basis `Phi = [1, cos(2 pi n/10), sin(2 pi n/10), cos(2 pi n/5), sin(2 pi n/5), (-1)^n]`
(frequencies {0, 1, 2, 5}, 6 functions), `R^2_row = 1 - mean((x - Phi C)^2) / var(x)`, and the median over rows is
reported. The full basis (frequencies 0..5, 10 functions) spans every 10-vector, so its R^2 is 1 by construction;
the cumulative curve adds frequencies in the paper's order [0, 5, 1, 2, 3, 4].

Objects (`fourier_analysis`): the digit token embeddings (`W_E` rows of 0..9, one row per model dimension), the last
MLP's output weights applied to the digit embeddings (`W_out @ E_digits^T`, one row per MLP neuron), the digit
unembeddings (`W_U` columns; equal to the embeddings when tied), and the last layer's `hook_resid_post` at the step
predicting c_2 projected on the digit unembeddings (one row per example). Paper medians (4x4 ICoT, spec 6.4):
0.84, 0.95, -, 0.99.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mult_probe.analysis._common import check_pairs, collect, digit_token_ids
from mult_probe.data import encode_nocot
from mult_probe.model import Transformer
from repro_core.errors import ConfigError

__all__ = [
    "CUMULATIVE_ORDER",
    "PAPER_FREQUENCIES",
    "FourierResult",
    "fourier_analysis",
    "fourier_basis",
    "fourier_cumulative_r2",
    "fourier_r2",
    "plot_fourier",
]

#: The paper's sparse basis: constant, k = 1 and k = 2 pairs, and the parity (-1)^n (k = 5).
PAPER_FREQUENCIES = (0, 1, 2, 5)
#: The order in which the cumulative R^2 adds frequencies.
CUMULATIVE_ORDER = (0, 5, 1, 2, 3, 4)


def fourier_basis(frequencies: Sequence[int] = PAPER_FREQUENCIES, n: int = 10) -> np.ndarray:
    """`[n, m]` real Fourier basis on 0..n-1: 1 for k = 0, (-1)^j for k = n/2, else the cos/sin pair of 2 pi k j/n."""
    columns = []
    j = np.arange(n)
    for f in frequencies:
        if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 0 <= f <= n // 2:
            raise ConfigError(f"frequencies: each must be an integer in 0..{n // 2}, got {f!r}")
        if f == 0:
            columns.append(np.ones(n))
        elif 2 * f == n:
            columns.append(np.cos(np.pi * j))
        else:
            columns += [np.cos(2 * np.pi * f * j / n), np.sin(2 * np.pi * f * j / n)]
    if len(set(frequencies)) != len(frequencies):
        raise ConfigError(f"frequencies: must be distinct, got {tuple(frequencies)}")
    return np.stack(columns, axis=1)


def _row_r2(rows: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per-row R^2 of the least-squares fit `rows [r, n] ~ basis [n, m] @ C`; NaN for constant rows."""
    coef, *_ = np.linalg.lstsq(basis, rows.T, rcond=None)
    residual = rows - (basis @ coef).T
    var = rows.var(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - (residual**2).mean(axis=1) / var
    out[var <= 1e-12 * max(1.0, float(np.abs(rows).max(initial=0.0))) ** 2] = np.nan
    return out


def fourier_r2(rows: Any, frequencies: Sequence[int] = PAPER_FREQUENCIES) -> tuple[float, np.ndarray]:
    """(median R^2, per-row R^2 `[r]`) of fitting every row of `rows` (`[r, 10]`) with the Fourier basis."""
    arr = np.asarray(rows.detach().cpu() if hasattr(rows, "detach") else rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 10:
        raise ValueError(f"rows must be [n_rows, 10] (one value per digit 0..9), got shape {arr.shape}")
    per_row = _row_r2(arr, fourier_basis(frequencies))
    finite = per_row[np.isfinite(per_row)]
    return (float(np.median(finite)) if finite.size else float("nan")), per_row


def fourier_cumulative_r2(rows: Any, order: Sequence[int] = CUMULATIVE_ORDER) -> np.ndarray:
    """`[len(order)]` median R^2 with the first 1, 2, ... frequencies of `order` (ends at 1.0 for all six)."""
    return np.array([fourier_r2(rows, tuple(order[: i + 1]))[0] for i in range(len(order))])


@dataclass(frozen=True)
class FourierResult:
    """Median R^2 per object with the paper's basis, and the cumulative curve.

    Attributes:
        objects: names (`embed`, `mlp_out`, `unembed`, `resid_final`).
        r2: `[n_objects]` median R^2 with frequencies {0, 1, 2, 5}.
        cumulative: `[n_objects, 6]` median R^2 adding frequencies 0, 5, 1, 2, 3, 4.
        n_rows: rows fitted per object.
        step: the answer step whose predicting position gives `resid_final` (c_2 in the paper).
    """

    objects: tuple[str, ...]
    r2: np.ndarray
    cumulative: np.ndarray
    n_rows: tuple[int, ...]
    step: int


@torch.no_grad()
def fourier_analysis(
    model: Transformer, pairs: Any, k: int, l: int | None = None, *, step: int = 2, batch_size: int = 500
) -> FourierResult:
    """The paper's four digit-indexed objects (module docstring) fitted with the Fourier basis."""
    l = k if l is None else l
    if not 0 <= step < k + l:
        raise ConfigError(f"step: must be in 0..{k + l - 1}, got {step}")
    pairs = check_pairs(pairs, k, l)
    digits = digit_token_ids()
    last = model.cfg.n_layers - 1
    e_digits = model.W_E.detach().float().cpu()[digits]  # [10, d_model]
    w_out = model.W_out[last].detach().float().cpu()  # [d_mlp, d_model]
    w_u = model.W_U.detach().float().cpu()[:, digits]  # [d_model, 10]
    batch = encode_nocot(pairs, k, l)
    hook = f"blocks.{last}.hook_resid_post"
    _, cache = collect(model, batch.input_ids, [hook], batch_size=batch_size)
    resid = cache[hook][:, int(batch.predict_positions[step])]  # [n, d_model]
    objects = {
        "embed": e_digits.T,  # [d_model, 10]
        "mlp_out": w_out @ e_digits.T,  # [d_mlp, 10]
        "unembed": w_u,  # [d_model, 10]
        "resid_final": resid @ w_u,  # [n, 10]
    }
    r2 = np.array([fourier_r2(rows)[0] for rows in objects.values()])
    cumulative = np.stack([fourier_cumulative_r2(rows) for rows in objects.values()])
    return FourierResult(
        objects=tuple(objects),
        r2=r2,
        cumulative=cumulative,
        n_rows=tuple(int(rows.shape[0]) for rows in objects.values()),
        step=step,
    )


def plot_fourier(result: FourierResult, *, title: str = "") -> Any:
    """Cumulative median R^2 per object as frequencies are added in the order 0, 5, 1, 2, 3, 4."""
    from repro_core.report import new_figure

    figure = new_figure(5.5, 3.5)
    axes = figure.add_subplot()
    labels = ["DC", "+k=5", "+k=1", "+k=2", "+k=3", "+k=4"]
    for name, curve, r2 in zip(result.objects, result.cumulative, result.r2, strict=True):
        axes.plot(range(len(curve)), curve, marker="o", label=f"{name} (basis 0,1,2,5: {r2:.2f})")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(-0.05, 1.05)
    axes.set_ylabel("median R²")
    axes.set_title(title or "Fourier fits of digit representations", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    return figure
