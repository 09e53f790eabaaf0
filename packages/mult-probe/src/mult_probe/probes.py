"""Linear probes for the running sums c_hat_t: closed-form ridge regression, deterministic and fast on CPU.

The paper (spec 4.4) reads c_hat_t at the token of c_t (the step that predicts c_{t+1}) from `resid_mid` /
`resid_post` of each layer and reports the validation MAE per position of the `blocks.1.hook_resid_mid` probe.
The authors train bias-free probes with AdamW and early stopping; we solve the ridge problem exactly
(`(X^T X + ridge I) w = X^T y`, with an intercept column that is not penalised), which is deterministic and needs
no learning-rate tuning. Activations are recorded from the model under test (not, as in the released script, from
the ICoT model for every probe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mult_probe.data import encode_nocot
from mult_probe.model import Transformer
from repro_core.errors import ConfigError
from repro_core.metrics import mae, r2
from repro_core.seeding import numpy_rng

__all__ = ["DEFAULT_PROBE_HOOKS", "ProbeResult", "fit_linear_probe", "fit_running_sum_probes", "plot_probe_mae"]

#: The four locations the authors probe (resid_mid and resid_post of both layers of a 2-layer model).
DEFAULT_PROBE_HOOKS = (
    "blocks.0.hook_resid_mid",
    "blocks.0.hook_resid_post",
    "blocks.1.hook_resid_mid",
    "blocks.1.hook_resid_post",
)


@dataclass(frozen=True)
class ProbeResult:
    """Validation error of one probe per (hook, answer position).

    Attributes:
        hooks: the probed hook names.
        mae: `[n_hooks, k+l]` mean absolute error of c_hat_t on the validation pairs.
        r2: `[n_hooks, k+l]` coefficient of determination (NaN where c_hat_t is constant).
        n_train, n_val: pair counts.
    """

    hooks: tuple[str, ...]
    mae: np.ndarray
    r2: np.ndarray
    n_train: int
    n_val: int

    def mae_for(self, hook: str) -> np.ndarray:
        """`[k+l]` MAE of the probes at `hook`."""
        return self.mae[self.hooks.index(hook)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers: per hook, the MAE and R² of c_hat_0 .. c_hat_{K-1} (NaN R² becomes None)."""
        return {
            "hooks": list(self.hooks),
            "mae": {h: np.round(self.mae[i], 4).tolist() for i, h in enumerate(self.hooks)},
            "r2": {
                h: [None if np.isnan(v) else round(float(v), 4) for v in self.r2[i]] for i, h in enumerate(self.hooks)
            },
            "n_train": self.n_train,
            "n_val": self.n_val,
        }


def fit_linear_probe(
    x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, *, ridge: float = 1e-2
) -> torch.Tensor:
    """Ridge regression with an unpenalised intercept.

    Args:
        x_train: `[n, d]` features; y_train: `[n]` targets; x_val: `[m, d]`.
    Returns:
        `[m]` predictions for `x_val` (float64).
    """
    if ridge < 0:
        raise ConfigError(f"ridge: must be >= 0, got {ridge}")
    x = x_train.double()
    mean_x, mean_y = x.mean(dim=0), y_train.double().mean()
    xc = x - mean_x
    gram = xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=torch.float64)
    w = torch.linalg.lstsq(gram, xc.T @ (y_train.double() - mean_y)).solution
    return (x_val.double() - mean_x) @ w + mean_y


@torch.no_grad()
def fit_running_sum_probes(
    model: Transformer,
    pairs: np.ndarray,
    k: int,
    l: int | None = None,
    *,
    hooks: Sequence[str] = DEFAULT_PROBE_HOOKS,
    val_fraction: float = 0.2,
    ridge: float = 1e-2,
    seed: int = 123,
    batch_size: int = 1000,
) -> ProbeResult:
    """Fit one probe per (hook, position t) predicting c_hat_t from the activation at the token of c_t.

    Args:
        model: the trained transformer (evaluated in eval mode).
        pairs: `[n, 2]` operand pairs (teacher-forced full answers are fed, as in the paper).
        hooks: hook names with `[B, T, d_model]` activations.
        val_fraction: share of pairs held out for the reported MAE/R² (seeded split).
    """
    l = k if l is None else l
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction: must be in (0, 1), got {val_fraction}")
    unknown = [h for h in hooks if h not in model.hook_dict]
    if unknown:
        raise ConfigError(f"hooks: no hook point named {unknown[0]!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    acts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    targets = []
    try:
        for start in range(0, len(pairs), batch_size):
            batch = encode_nocot(pairs[start : start + batch_size], k, l)
            _, cache = model.run_with_cache(torch.as_tensor(batch.input_ids, device=device), names_filter=list(hooks))
            for h in hooks:
                acts[h].append(cache[h][:, batch.c_token_positions].cpu())  # [B, K, d_model]
            targets.append(torch.as_tensor(batch.c_hat))
    finally:
        model.train(was_training)
    y = torch.cat(targets)  # [n, K]
    n = y.shape[0]
    n_val = max(1, round(val_fraction * n))
    if n - n_val < 2:
        raise ConfigError(f"pairs: {n} pairs are too few for a train/validation split")
    order = numpy_rng(seed, "mult-probe", "probe-split").permutation(n)
    train_idx, val_idx = torch.as_tensor(order[n_val:]), torch.as_tensor(order[:n_val])
    maes = np.full((len(hooks), k + l), np.nan)
    r2s = np.full((len(hooks), k + l), np.nan)
    for i, h in enumerate(hooks):
        x = torch.cat(acts[h])  # [n, K, d_model]
        for t in range(k + l):
            pred = fit_linear_probe(x[train_idx, t], y[train_idx, t], x[val_idx, t], ridge=ridge).numpy()
            truth = y[val_idx, t].double().numpy()
            maes[i, t] = mae(pred, truth)
            r2s[i, t] = r2(pred, truth) if truth.std() > 0 else np.nan
    return ProbeResult(hooks=tuple(hooks), mae=maes, r2=r2s, n_train=n - n_val, n_val=n_val)


def plot_probe_mae(result: ProbeResult, *, title: str = "") -> Any:
    """Validation MAE of c_hat_t per answer position, one line per probed hook (log scale; the paper's Fig. shows
    the `blocks.1.hook_resid_mid` line for c_hat_2 .. c_hat_6)."""
    from repro_core.report import new_figure

    figure = new_figure(6.0, 3.5)
    axes = figure.add_subplot()
    positions = range(result.mae.shape[1])
    for i, hook in enumerate(result.hooks):
        axes.plot(positions, np.maximum(result.mae[i], 1e-3), marker="o", label=hook)
    axes.set_xticks(list(positions), [f"ĉ{t}" for t in positions])
    axes.set_yscale("log")
    axes.set_ylabel("validation MAE")
    axes.set_title(title or f"linear probes for the running sums (ridge, {result.n_val} validation pairs)", fontsize=9)
    axes.legend(fontsize=7, loc="best")
    return figure
