"""Geometry of digit representations: PCA, the pentagonal prism (spec 4.8) and Minkowski sums in attention (4.9).

Minkowski sums: a head that attends to a_i and b_j with weights alpha and beta writes
`alpha * A_i + beta * B_j` (A, B: the OV-projected value vectors of those positions), so its outputs over all
(a_i, b_j) form the Minkowski sum (alpha A) + (beta B): global clusters by one digit and, inside each, sub-clusters
by the other, with the same shape at both scales when A and B share a geometry. `minkowski_structure` measures this
on any `[n, d]` outputs with two digit labels; `minkowski_scores` reads a model's per-head outputs (`hook_z` of the
query predicting c_step times `W_O[h]`, post-W_O as the authors' `hook_attn_output_per_head`) at every head of a
layer and adds the reconstruction from the measured attention weights and value vectors.

PCA is a torch SVD (no scikit-learn dependency), with signs fixed so the largest loading of each component is
positive (deterministic plots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mult_probe.analysis._common import check_pairs, collect
from mult_probe.data import encode_nocot
from mult_probe.model import Transformer
from repro_core.errors import ConfigError

__all__ = [
    "MinkowskiResult",
    "MinkowskiScores",
    "PCAResult",
    "PrismResult",
    "minkowski_scores",
    "minkowski_structure",
    "pca",
    "plot_minkowski",
    "plot_prism",
    "prism_analysis",
    "prism_scores",
]


@dataclass(frozen=True)
class PCAResult:
    """Principal components of `[n, d]` data.

    Attributes:
        mean: `[d]`; components: `[c, d]` orthonormal rows; explained_variance_ratio: `[c]`;
        projected: `[n, c]` centred data in component coordinates.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    projected: np.ndarray


def pca(x: Any, n_components: int = 3) -> PCAResult:
    """PCA of `x` (`[n, d]`) by SVD in float64."""
    data = torch.as_tensor(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x), dtype=torch.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"x must be [n >= 2, d], got shape {tuple(data.shape)}")
    if not 1 <= n_components <= min(data.shape):
        raise ConfigError(f"n_components: must be in 1..{min(data.shape)}, got {n_components}")
    mean = data.mean(dim=0)
    centred = data - mean
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    comps = vh[:n_components]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)))
    comps = comps * signs
    total = (s**2).sum()
    ratio = (s[:n_components] ** 2 / total) if total > 0 else torch.zeros(n_components, dtype=torch.float64)
    return PCAResult(
        mean=mean.numpy(),
        components=comps.numpy(),
        explained_variance_ratio=ratio.numpy(),
        projected=(centred @ comps.T).numpy(),
    )


@dataclass(frozen=True)
class PrismResult:
    """The pentagonal-prism checks on a PCA(3) of digit-labelled states.

    Attributes:
        pca: the PCA(3).
        parity_corr: |corr(PC1, (-1)^n)| (the paper: PC1 is parity, the k = 5 component).
        pentagon_alignment: |mean_n exp(i(theta_n -/+ 4 pi n / 10))| over the digit centroids' angles theta_n in the
            PC2-PC3 plane, best over reflection: 1 when the centroids sit in the k = 2 order (two pentagons).
        centroids: `[10, 3]` mean PC coordinates per digit (NaN rows for absent digits).
        labels: `[n]` the digit of every state.
    """

    pca: PCAResult
    parity_corr: float
    pentagon_alignment: float
    centroids: np.ndarray
    labels: np.ndarray


def prism_scores(x: Any, digits: Any) -> PrismResult:
    """Prism checks for states `x` (`[n, d]`) labelled by digits `[n]` in 0..9."""
    labels = np.asarray(digits, dtype=np.int64)
    result = pca(x, 3)
    if labels.shape != (result.projected.shape[0],) or (labels < 0).any() or (labels > 9).any():
        raise ValueError("digits must be [n] integers in 0..9 matching the rows of x")
    parity = (-1.0) ** labels
    pc1 = result.projected[:, 0]
    corr = float(abs(np.corrcoef(pc1, parity)[0, 1])) if pc1.std() > 0 and parity.std() > 0 else float("nan")
    centroids = np.full((10, 3), np.nan)
    for d in range(10):
        if (labels == d).any():
            centroids[d] = result.projected[labels == d].mean(axis=0)
    present = np.flatnonzero(~np.isnan(centroids[:, 0]))
    theta = np.arctan2(centroids[present, 2], centroids[present, 1])
    phi = 4 * np.pi * present / 10
    alignment = max(abs(np.exp(1j * (theta - phi)).mean()), abs(np.exp(1j * (theta + phi)).mean()))
    return PrismResult(
        pca=result, parity_corr=corr, pentagon_alignment=float(alignment), centroids=centroids, labels=labels
    )


@torch.no_grad()
def prism_analysis(
    model: Transformer, pairs: Any, k: int, l: int | None = None, *, step: int = 2, batch_size: int = 500
) -> PrismResult:
    """Prism checks on the last layer's `hook_resid_post` at the query predicting c_step, labelled by c_step."""
    l = k if l is None else l
    if not 0 <= step < k + l:
        raise ConfigError(f"step: must be in 0..{k + l - 1}, got {step}")
    pairs = check_pairs(pairs, k, l)
    batch = encode_nocot(pairs, k, l)
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    _, cache = collect(model, batch.input_ids, [hook], batch_size=batch_size)
    return prism_scores(cache[hook][:, int(batch.predict_positions[step])], batch.answer[:, step])


@dataclass(frozen=True)
class MinkowskiScores:
    """How well `[n, d]` outputs decompose into a global-digit part plus a local-digit part.

    Attributes:
        global_r2: share of the total variance explained by the global digit's cluster means.
        local_r2_within: share of the variance *inside* the global clusters explained by the local digit.
        additive_r2: R^2 of the additive fit `G[global] + L[local]` (1 for an exact Minkowski sum).
        procrustes: similarity in [0, 1] of the global-effect and local-effect configurations (10 points each) after
            the best rotation, reflection and scale (1: the same shape at both scales, the paper's "fractal").
        explained_variance_ratio: `[3]` of the outputs' PCA.
    """

    global_r2: float
    local_r2_within: float
    additive_r2: float
    procrustes: float
    explained_variance_ratio: np.ndarray


def _ss(x: np.ndarray) -> float:
    return float(((x - x.mean(axis=0)) ** 2).sum())


def _group_means(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for value in np.unique(labels):
        mask = labels == value
        out[mask] = x[mask].mean(axis=0)
    return out


def _procrustes_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Procrustes disparity of two `[m, d]` point sets (centred, unit Frobenius norm, best orthogonal map)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    singular = np.linalg.svd((a / na).T @ (b / nb), compute_uv=False)
    return float(min(1.0, singular.sum() ** 2))


def minkowski_structure(outputs: Any, global_digits: Any, local_digits: Any) -> MinkowskiScores:
    """Minkowski-sum scores of `outputs` (`[n, d]`) labelled by two digits (`[n]` each, values 0..9)."""
    x = np.asarray(outputs.detach().cpu() if hasattr(outputs, "detach") else outputs, dtype=np.float64)
    g = np.asarray(global_digits, dtype=np.int64)
    loc = np.asarray(local_digits, dtype=np.int64)
    if x.ndim != 2 or g.shape != (x.shape[0],) or loc.shape != (x.shape[0],):
        raise ValueError(f"outputs must be [n, d] with [n] labels, got {x.shape}, {g.shape}, {loc.shape}")
    total = _ss(x)
    if total == 0:
        raise ValueError("outputs are constant; nothing to decompose")
    within_global = x - _group_means(x, g)
    global_r2 = 1.0 - _ss(within_global) / total
    within_pair = x - _group_means(x, g * 10 + loc)
    ss_wg = _ss(within_global)
    local_r2 = 1.0 - _ss(within_pair) / ss_wg if ss_wg > 0 else float("nan")
    # additive two-way fit by alternating projections (exact for balanced designs, converges in general)
    xc = x - x.mean(axis=0)
    global_part = _group_means(xc, g)
    local_part = np.zeros_like(xc)
    for _ in range(50):
        local_part = _group_means(xc - global_part, loc)
        global_part = _group_means(xc - local_part, g)
    additive = 1.0 - _ss(xc - global_part - local_part) / total
    common = sorted(set(g.tolist()) & set(loc.tolist()))
    if len(common) >= 3:
        g_cfg = np.stack([global_part[g == v][0] for v in common])
        l_cfg = np.stack([local_part[loc == v][0] for v in common])
        procrustes = _procrustes_similarity(g_cfg, l_cfg)
    else:
        procrustes = float("nan")
    ratio = pca(x, min(3, *x.shape)).explained_variance_ratio
    return MinkowskiScores(
        global_r2=float(global_r2),
        local_r2_within=float(local_r2),
        additive_r2=float(additive),
        procrustes=procrustes,
        explained_variance_ratio=ratio,
    )


@dataclass(frozen=True)
class MinkowskiResult:
    """Per-head Minkowski scores of one layer at the query predicting c_step.

    Attributes:
        layer, step: where the head outputs are read.
        global_digit, local_digit: the labels (`b1`, `a1` in the paper's Fig. panels b-d).
        heads: `[n_heads]` `MinkowskiScores` per head.
        attention: `[n_heads, 2]` mean attention on (local digit position, global digit position).
        reconstruction_r2: `[n_heads]` R^2 of `alpha A + beta B` (measured weights times the value vectors of
            those two positions through W_O) against the head's output.
        best_head: the head with the highest additive R^2 among those attending most to the two digits.
        projected: `[n, 3]` PCA coordinates of the best head's outputs (for plots).
        global_labels, local_labels: `[n]` digit labels.
        n: number of examples.
    """

    layer: int
    step: int
    global_digit: str
    local_digit: str
    heads: tuple[MinkowskiScores, ...]
    attention: np.ndarray
    reconstruction_r2: np.ndarray
    best_head: int
    projected: np.ndarray
    global_labels: np.ndarray
    local_labels: np.ndarray
    n: int


def _digit_position(name: str, k: int, l: int) -> int:
    """Token position of a digit named `a<i>` or `b<j>`."""
    if len(name) < 2 or name[0] not in "ab" or not name[1:].isdigit():
        raise ConfigError(f"digit: expected a<i> or b<j>, got {name!r}")
    index = int(name[1:])
    width = k if name[0] == "a" else l
    if index >= width:
        raise ConfigError(f"digit: {name} does not exist for {k}x{l} operands")
    return index if name[0] == "a" else k + 1 + index


@torch.no_grad()
def minkowski_scores(
    model: Transformer,
    pairs: Any,
    k: int,
    l: int | None = None,
    *,
    layer: int = 0,
    step: int = 2,
    global_digit: str = "b1",
    local_digit: str = "a1",
    batch_size: int = 500,
) -> MinkowskiResult:
    """Minkowski-sum scores of every head of `layer` at the query predicting c_step (paper: layer 1, c_2)."""
    l = k if l is None else l
    cfg = model.cfg
    if not 0 <= layer < cfg.n_layers:
        raise ConfigError(f"layer: must be in 0..{cfg.n_layers - 1}, got {layer}")
    if not 0 <= step < k + l:
        raise ConfigError(f"step: must be in 0..{k + l - 1}, got {step}")
    g_pos = _digit_position(global_digit, k, l)
    l_pos = _digit_position(local_digit, k, l)
    pairs = check_pairs(pairs, k, l)
    batch = encode_nocot(pairs, k, l)
    q = int(batch.predict_positions[step])
    if max(g_pos, l_pos) > q:
        raise ConfigError("global_digit/local_digit: must come before the query position")
    names = [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.attn.hook_pattern", f"blocks.{layer}.attn.hook_v"]
    _, cache = collect(model, batch.input_ids, names, batch_size=batch_size)
    w_o = model.W_O[layer].detach().float().cpu().double()  # [H, d_head, d_model]
    z = cache[names[0]][:, q].double()  # [n, H, d_head]
    pattern = cache[names[1]][:, :, q].double()  # [n, H, T]
    v = cache[names[2]].double()  # [n, T, H, d_head]
    outputs = torch.einsum("nhe,hed->nhd", z, w_o)  # per-head output, post-W_O: [n, H, d_model]
    g_labels = batch.input_ids[:, g_pos]  # digit tokens have ids 0..9
    l_labels = batch.input_ids[:, l_pos]
    heads, recon = [], np.zeros(cfg.n_heads)
    attention = torch.stack([pattern[:, :, l_pos].mean(0), pattern[:, :, g_pos].mean(0)], dim=1).numpy()
    for h in range(cfg.n_heads):
        out = outputs[:, h]
        heads.append(minkowski_structure(out.numpy(), g_labels, l_labels))
        a_part = pattern[:, h, l_pos, None] * (v[:, l_pos, h] @ w_o[h])
        approx = a_part + pattern[:, h, g_pos, None] * (v[:, g_pos, h] @ w_o[h])
        total = ((out - out.mean(0)) ** 2).sum()
        recon[h] = float(1 - ((out - approx) ** 2).sum() / total) if total > 0 else float("nan")
    focus = attention.sum(axis=1)
    candidates = [h for h in range(cfg.n_heads) if focus[h] >= 0.5 * focus.max()]
    best = max(candidates, key=lambda h: heads[h].additive_r2)
    return MinkowskiResult(
        layer=layer,
        step=step,
        global_digit=global_digit,
        local_digit=local_digit,
        heads=tuple(heads),
        attention=attention,
        reconstruction_r2=recon,
        best_head=best,
        projected=pca(outputs[:, best].numpy(), 3).projected,
        global_labels=g_labels,
        local_labels=l_labels,
        n=len(pairs),
    )


def _scatter3d(figure: Any, position: int, points: np.ndarray, labels: np.ndarray, title: str) -> None:
    axes = figure.add_subplot(1, 2, position, projection="3d")
    image = axes.scatter(points[:, 0], points[:, 1], points[:, 2], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
    axes.set_xlabel("PC1", fontsize=7)
    axes.set_ylabel("PC2", fontsize=7)
    axes.set_zlabel("PC3", fontsize=7)
    axes.tick_params(labelsize=5)
    axes.set_title(title, fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.6, ticks=range(10))


def plot_minkowski(result: MinkowskiResult) -> Any:
    """3-D PCA of the best head's outputs coloured by the global digit, and the largest global cluster re-fitted
    and coloured by the local digit (the paper's Fig. panels b-d)."""
    from repro_core.report import new_figure

    figure = new_figure(9.0, 4.0)
    h = result.best_head
    scores = result.heads[h]
    _scatter3d(
        figure,
        1,
        result.projected,
        result.global_labels,
        f"L{result.layer}H{h} at c{result.step}: colour {result.global_digit} (R² {scores.global_r2:.2f})",
    )
    values, counts = np.unique(result.global_labels, return_counts=True)
    chosen = values[counts.argmax()]
    inside = result.global_labels == chosen
    points = result.projected[inside]
    local = pca(points, min(3, *points.shape)).projected if points.shape[0] >= 3 else points
    if local.shape[1] < 3:
        local = np.pad(local, ((0, 0), (0, 3 - local.shape[1])))
    _scatter3d(
        figure,
        2,
        local,
        result.local_labels[inside],
        f"{result.global_digit} = {chosen}: colour {result.local_digit} (within R² {scores.local_r2_within:.2f})",
    )
    return figure


def plot_prism(result: PrismResult, *, title: str = "") -> Any:
    """3-D PCA coloured by digit with the centroids joined n -> n+2 (the two pentagons) and n <-> n+5."""
    from repro_core.report import new_figure

    figure = new_figure(5.0, 4.5)
    axes = figure.add_subplot(projection="3d")
    p = result.pca.projected
    image = axes.scatter(p[:, 0], p[:, 1], p[:, 2], c=result.labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
    c = result.centroids
    for n in range(10):
        for m in ((n + 2) % 10, (n + 5) % 10):
            if not (np.isnan(c[n]).any() or np.isnan(c[m]).any()):
                axes.plot(*np.stack([c[n], c[m]]).T, color="black", linewidth=0.6)
    for axis, name in zip("xyz", ("PC1", "PC2", "PC3"), strict=True):
        getattr(axes, f"set_{axis}label")(name, fontsize=7)
    axes.set_title(
        title or f"|corr(PC1, parity)| {result.parity_corr:.2f}, pentagon alignment {result.pentagon_alignment:.2f}",
        fontsize=8,
    )
    figure.colorbar(image, ax=axes, shrink=0.6, ticks=range(10))
    return figure
