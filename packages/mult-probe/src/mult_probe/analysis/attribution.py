"""Logit attribution for long-range dependencies: which input digits (and which earlier positions) drive each c_t.

Two complementary measurements:

- `logit_attribution` is the paper's counterfactual (spec 4.5, `long_range_logit_attrib.py`): for each answer
  digit c_t and each operand digit d, replace d by a uniformly random *different* digit (non-zero for a most
  significant digit), keep the original answer prefix c_<t, and record
  `delta = logit_orig[pred] - logit_cf[pred]` at the position predicting c_t, with `pred` the argmax on the
  original input; averaged over examples. ICoT shows an upper-triangular band (digit index <= t), SFT only the
  short-range corners (spec 6.5).
- `direct_logit_attribution` splits the logit difference `logit[c_t] - mean_{d != c_t} logit[d]` exactly into
  the direct contributions of the embeddings, of every (layer, head, source position) and of the MLPs, with the
  final LayerNorm's scale frozen at its cached value (the usual DLA linearisation; the parts sum to the logit
  difference up to float error, which the result reports).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from mult_probe.analysis._common import check_pairs, collect, digit_token_ids, token_roles
from mult_probe.data import encode_nocot
from mult_probe.model import Transformer
from repro_core.seeding import numpy_rng

__all__ = [
    "AttributionResult",
    "DirectAttributionResult",
    "PatchingResult",
    "activation_patching",
    "attribution_patching",
    "direct_logit_attribution",
    "logit_attribution",
    "patch_activation",
    "plot_attribution",
    "plot_direct_attribution",
]


@dataclass(frozen=True)
class AttributionResult:
    """Counterfactual logit attribution (spec 4.5).

    Attributes:
        inputs: row labels `a0..a{k-1}, b0..b{l-1}` (the paper's heat map shows them reversed, a3..a0, b3..b0).
        outputs: column labels `c0..c{K-1}`.
        delta: `[k+l, K]` mean `logit_orig[pred] - logit_cf[pred]` over examples.
        delta_std: `[k+l, K]` standard deviation over examples.
        flip_rate: `[k+l, K]` share of examples whose argmax changes under the counterfactual.
        band_mean: mean delta over (digit index i, step t) with t >= i (the ICoT band).
        below_band_mean: mean delta with t < i (the paper finds ~0 here for both models).
        n: number of examples.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    delta: np.ndarray
    delta_std: np.ndarray
    flip_rate: np.ndarray
    band_mean: float
    below_band_mean: float
    n: int


def _counterfactual_digits(original: np.ndarray, most_significant: bool, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random digit different from each `original` (`[n]`), in 1..9 for a most significant digit."""
    if most_significant:  # original in 1..9: shift by 1..8 within the 9 non-zero digits
        return (original - 1 + rng.integers(1, 9, size=original.shape)) % 9 + 1
    return (original + rng.integers(1, 10, size=original.shape)) % 10


@torch.no_grad()
def logit_attribution(
    model: Transformer,
    pairs: Any,
    k: int,
    l: int | None = None,
    *,
    seed: int = 99,
    batch_size: int = 500,
) -> AttributionResult:
    """The paper's counterfactual digit-swap attribution for every (operand digit, answer digit).

    Args:
        model: a trained transformer.
        pairs: `[n, 2]` operand pairs with exactly k and l digits.
        seed: seeds the replacement digits (`repro_core.seeding.numpy_rng`; the authors use `random.seed(99)`).
    """
    l = k if l is None else l
    pairs = check_pairs(pairs, k, l)
    batch = encode_nocot(pairs, k, l)
    positions = torch.as_tensor(batch.predict_positions)
    logits, _ = collect(model, batch.input_ids, [], batch_size=batch_size)
    orig = logits[:, positions]  # [n, K, V]
    pred = orig.argmax(dim=-1, keepdim=True)  # [n, K, 1]
    orig_pred = orig.gather(-1, pred)[..., 0]
    rng = numpy_rng(seed, "mult-probe", "logit-attribution")
    digit_positions = [*range(k), *range(k + 1, k + 1 + l)]  # token positions of a_i and b_j
    most_significant = {k - 1, k + l}
    inputs = (*(f"a{i}" for i in range(k)), *(f"b{j}" for j in range(l)))
    delta = np.zeros((k + l, k + l))
    delta_std = np.zeros_like(delta)
    flips = np.zeros_like(delta)
    for row, pos in enumerate(digit_positions):
        tokens = batch.input_ids.copy()
        # digit tokens have ids 0..9 in CharTokenizer, so the token is the digit itself
        tokens[:, pos] = _counterfactual_digits(tokens[:, pos], pos in most_significant, rng)
        cf_logits, _ = collect(model, tokens, [], batch_size=batch_size)
        cf = cf_logits[:, positions]
        d = (orig_pred - cf.gather(-1, pred)[..., 0]).double()  # [n, K]
        delta[row] = d.mean(dim=0).numpy()
        delta_std[row] = d.std(dim=0, correction=0).numpy()
        flips[row] = (cf.argmax(dim=-1) != pred[..., 0]).double().mean(dim=0).numpy()
    index = np.array([*range(k), *range(l)])[:, None]  # digit index i of each row
    steps = np.arange(k + l)[None, :]
    band = steps >= index
    return AttributionResult(
        inputs=inputs,
        outputs=tuple(f"c{t}" for t in range(k + l)),
        delta=delta,
        delta_std=delta_std,
        flip_rate=flips,
        band_mean=float(delta[band].mean()),
        below_band_mean=float(delta[~band].mean()) if (~band).any() else float("nan"),
        n=len(pairs),
    )


@dataclass(frozen=True)
class DirectAttributionResult:
    """Exact direct logit attribution of `logit[c_t] - mean_{d != c_t} logit[d]` at every answer step.

    Attributes:
        components: names of the parts: `embed`, `pos_embed`, `L{l}H{h}` (one per head, summed over sources),
            `L{l}.attn_bias`, `L{l}.mlp`, `ln_final.bias`.
        outputs: `c0..c{K-1}`.
        contributions: `[n_components, K]` mean over examples; columns sum to `logit_diff`.
        head_source: `[n_layers, n_heads, K, T]` mean contribution of each head through each source position
            (`sources` names the positions), the long-range reads.
        sources: role of every source position (`a0`, `*`, `b1`, `####`, `c2`, ...).
        logit_diff: `[K]` mean actual logit difference.
        max_abs_error: largest |sum of parts - actual logit difference| over examples and steps (float error only).
        n: number of examples.
    """

    components: tuple[str, ...]
    outputs: tuple[str, ...]
    contributions: np.ndarray
    head_source: np.ndarray
    sources: tuple[str, ...]
    logit_diff: np.ndarray
    max_abs_error: float
    n: int


@torch.no_grad()
def direct_logit_attribution(
    model: Transformer, pairs: Any, k: int, l: int | None = None, *, batch_size: int = 500
) -> DirectAttributionResult:
    """Split the correct digit's logit difference into embeddings, per-(head, source position) and MLP parts."""
    l = k if l is None else l
    pairs = check_pairs(pairs, k, l)
    cfg = model.cfg
    batch = encode_nocot(pairs, k, l)
    last = cfg.n_layers - 1
    names = ["hook_embed", "hook_pos_embed", f"blocks.{last}.hook_resid_post"]
    for layer in range(cfg.n_layers):
        names += [f"blocks.{layer}.attn.hook_pattern", f"blocks.{layer}.attn.hook_v", f"blocks.{layer}.hook_mlp_out"]
    logits, cache = collect(model, batch.input_ids, names, batch_size=batch_size)
    q = torch.as_tensor(batch.predict_positions)
    answer = torch.as_tensor(batch.answer)  # [n, K]
    digits = torch.as_tensor(digit_token_ids())
    w_u = model.W_U.detach().float().cpu()[:, digits]  # [d_model, 10]
    # direction u = W_U[:, c] - mean of the other nine digit columns: [n, K, d_model]
    onehot = torch.nn.functional.one_hot(answer, 10).float()
    u = onehot @ w_u.T * (1 + 1 / 9) - w_u.sum(dim=1) / 9
    ln = model.ln_final.ln
    x = cache[f"blocks.{last}.hook_resid_post"][:, q]  # [n, K, d_model]
    scale = (x.double().var(dim=-1, unbiased=False, keepdim=True) + ln.eps).sqrt().float()
    g = u * ln.weight.detach().float().cpu()
    g = (g - g.mean(dim=-1, keepdim=True)) / scale  # centring is self-adjoint: comp . g == centred(comp) / s . w*u
    parts: list[tuple[str, torch.Tensor]] = [
        ("embed", (cache["hook_embed"][:, q] * g).sum(-1)),
        ("pos_embed", (cache["hook_pos_embed"][:, q] * g).sum(-1)),
    ]
    head_source = np.zeros((cfg.n_layers, cfg.n_heads, k + l, batch.input_ids.shape[1]))
    w_o = model.W_O.detach().float().cpu()  # [L, H, d_head, d_model]
    for layer in range(cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, :, q]  # [n, H, K, T]
        v = cache[f"blocks.{layer}.attn.hook_v"]  # [n, T, H, d_head]
        og = torch.einsum("hed,nkd->nkhe", w_o[layer], g)  # W_O g per head: [n, K, H, d_head]
        per_source = pattern * torch.einsum("nshe,nkhe->nhks", v, og)  # [n, H, K, T]
        head_source[layer] = per_source.double().mean(dim=0).numpy()
        for h in range(cfg.n_heads):
            parts.append((f"L{layer}H{h}", per_source[:, h].sum(-1)))
        if cfg.bias:
            b_o = model.blocks[layer].attn.b_O.detach().float().cpu()
            parts.append((f"L{layer}.attn_bias", (b_o * g).sum(-1)))
        parts.append((f"L{layer}.mlp", (cache[f"blocks.{layer}.hook_mlp_out"][:, q] * g).sum(-1)))
    parts.append(("ln_final.bias", (ln.bias.detach().float().cpu() * u).sum(-1)))
    digit_logits = logits[:, q][..., digits]  # [n, K, 10]
    correct = digit_logits.gather(-1, answer[..., None])[..., 0]
    actual = (correct * (1 + 1 / 9) - digit_logits.sum(-1) / 9).double()  # logit[c] - mean of the other nine
    stacked = torch.stack([p for _, p in parts]).double()  # [n_components, n, K]
    error = float((stacked.sum(0) - actual).abs().max())
    return DirectAttributionResult(
        components=tuple(name for name, _ in parts),
        outputs=tuple(f"c{t}" for t in range(k + l)),
        contributions=stacked.mean(dim=1).numpy(),
        head_source=head_source,
        sources=tuple(token_roles(k, l)),
        logit_diff=actual.mean(dim=0).numpy(),
        max_abs_error=error,
        n=len(pairs),
    )


def plot_attribution(result: AttributionResult, *, title: str = "") -> Any:
    """Heat map in the paper's layout: rows a_{k-1}..a0, b_{l-1}..b0; columns c0..c_{K-1}; colour = delta."""
    from repro_core.report import new_figure

    n_a = sum(name.startswith("a") for name in result.inputs)
    order = [*range(n_a - 1, -1, -1), *range(len(result.inputs) - 1, n_a - 1, -1)]
    data = result.delta[order]
    figure = new_figure(1.2 + 0.6 * data.shape[1], 1.0 + 0.45 * data.shape[0])
    axes = figure.add_subplot()
    image = axes.imshow(data, cmap="viridis", aspect="auto")
    axes.set_xticks(range(data.shape[1]), result.outputs)
    axes.set_yticks(range(data.shape[0]), [result.inputs[i] for i in order])
    for (r, c), value in np.ndenumerate(data):
        axes.text(c, r, f"{value:.1f}", ha="center", va="center", fontsize=6, color="white")
    axes.set_xlabel("answer digit (teacher-forced prefix)")
    axes.set_title(title or f"counterfactual logit attribution (n = {result.n})", fontsize=9)
    figure.colorbar(image, ax=axes, label="Δ logit of the original prediction")
    return figure


def plot_direct_attribution(result: DirectAttributionResult, *, title: str = "") -> Any:
    """One heat map per layer: mean direct contribution (summed over heads) of each source position to each c_t."""
    from repro_core.report import new_figure

    per_layer = result.head_source.sum(axis=1)  # [L, K, T]
    n_layers = per_layer.shape[0]
    figure = new_figure(1.5 + 0.35 * per_layer.shape[2], 1.2 + 2.2 * n_layers)
    bound = float(np.abs(per_layer).max()) or 1.0
    for layer in range(n_layers):
        axes = figure.add_subplot(n_layers, 1, layer + 1)
        image = axes.imshow(per_layer[layer], cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
        axes.set_xticks(range(len(result.sources)), result.sources, fontsize=6, rotation=90)
        axes.set_yticks(range(len(result.outputs)), result.outputs, fontsize=7)
        axes.set_ylabel(f"layer {layer}: predicting")
        figure.colorbar(image, ax=axes, label="direct logit contribution")
    figure.suptitle(title or f"direct logit attribution by source position (n = {result.n})", fontsize=9)
    return figure


# --- activation and attribution patching ---------------------------------------------------------------------------

PatchUnit = Literal["position", "head", "position_head", "all"]


@dataclass(frozen=True)
class PatchingResult:
    """Effects of patching clean activations into a corrupted run, one per (hook, unit).

    Attributes:
        hook_names: the patched hooks, rows of `effect`.
        per: what one patch covers: a `position` (every feature there), a `head` (every position), one
            `position_head` pair, or `all` of the activation.
        effect: `[n_hooks, n_pos]`, `[n_hooks, n_heads]`, `[n_hooks, n_pos, n_heads]` or `[n_hooks]`:
            `metric(patched) - metric(corrupted)` (activation patching, exact) or its first-order estimate
            `(clean - corrupted) . d metric / d activation` at the corrupted run (attribution patching).
        corrupted_metric, clean_metric: the metric on the two unpatched runs (their difference is what a full
            patch of the whole residual stream restores).
    """

    hook_names: tuple[str, ...]
    per: PatchUnit
    effect: torch.Tensor
    corrupted_metric: float
    clean_metric: float


def _unit_dims(name: str, per: PatchUnit) -> tuple[int | None, int | None]:
    """(position dim, head dim) of a hook's activation: [B, T, ...] except patterns/scores [B, H, T_q, T_k]."""
    if name.endswith(("hook_pattern", "hook_attn_scores")):
        pos, head = 2, 1
    elif name.endswith(("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z", "attn.hook_result")):
        pos, head = 1, 2
    else:
        pos, head = 1, None
    if per in ("head", "position_head") and head is None:
        raise ValueError(f"{name}: has no head dimension; patch it per 'position' or 'all'")
    return (pos if per in ("position", "position_head") else None), (head if per in ("head", "position_head") else None)


def _units(act: torch.Tensor, pos_dim: int | None, head_dim: int | None) -> list[tuple[int, ...]]:
    sizes = [act.shape[d] for d in (pos_dim, head_dim) if d is not None]
    return list(itertools.product(*map(range, sizes)))


def _index(ndim: int, pos_dim: int | None, head_dim: int | None, unit: tuple[int, ...]) -> tuple[Any, ...]:
    index: list[Any] = [slice(None)] * ndim
    values = iter(unit)
    for dim in (pos_dim, head_dim):
        if dim is not None:
            index[dim] = next(values)
    return tuple(index)


def _check_names(model: Transformer, hook_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(hook_names)
    unknown = [n for n in names if n not in model.hook_dict]
    if unknown or not names:
        raise KeyError(f"no hook point named {unknown[0]!r}" if unknown else "hook_names: give at least one")
    return names


@torch.no_grad()
def patch_activation(
    model: Transformer,
    tokens: torch.Tensor,
    hook_name: str,
    value: torch.Tensor,
    *,
    position: int | None = None,
    head: int | None = None,
) -> torch.Tensor:
    """Logits of `tokens` with `hook_name`'s activation replaced by `value` (at one position and/or head only)."""
    pos_dim, head_dim = _unit_dims(hook_name, "position_head" if head is not None else "position")
    if position is None:
        pos_dim = None
    if head is None:
        head_dim = None
    unit = tuple(i for i in (position, head) if i is not None)
    index = _index(value.ndim, pos_dim, head_dim, unit)
    return model.run_with_hooks(tokens, [(hook_name, _replacing(index, value))])


def _replacing(index: tuple[Any, ...], source: torch.Tensor) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A forward hook that swaps in `source[index]` at `index` of the activation (a copy; the run keeps its own)."""

    def replace(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        act[index] = source[index]
        return act

    return replace


@torch.no_grad()
def activation_patching(
    model: Transformer,
    clean_tokens: torch.Tensor,
    corrupted_tokens: torch.Tensor,
    metric: Callable[[torch.Tensor], torch.Tensor],
    hook_names: Sequence[str],
    *,
    per: PatchUnit = "position",
) -> PatchingResult:
    """Denoising activation patching: run the corrupted input, restore one clean activation unit, measure.

    `metric(logits) -> scalar` (e.g. a mean logit difference). One forward pass per (hook, unit); exact, costly.
    """
    names = _check_names(model, hook_names)
    model.eval()
    clean_logits, clean_cache = model.run_with_cache(clean_tokens, list(names))
    baseline = float(metric(model(corrupted_tokens)))
    rows = []
    for name in names:
        pos_dim, head_dim = _unit_dims(name, per)
        clean = clean_cache[name]
        effects = []
        for unit in _units(clean, pos_dim, head_dim):
            index = _index(clean.ndim, pos_dim, head_dim, unit)
            patched = model.run_with_hooks(corrupted_tokens, [(name, _replacing(index, clean))])
            effects.append(float(metric(patched)) - baseline)
        shape = [clean.shape[d] for d in (pos_dim, head_dim) if d is not None]
        rows.append(torch.tensor(effects).view(shape))
    return PatchingResult(names, per, torch.stack(rows), baseline, float(metric(clean_logits)))


def attribution_patching(
    model: Transformer,
    clean_tokens: torch.Tensor,
    corrupted_tokens: torch.Tensor,
    metric: Callable[[torch.Tensor], torch.Tensor],
    hook_names: Sequence[str],
    *,
    per: PatchUnit = "position",
) -> PatchingResult:
    """Attribution patching (Nanda 2023): the first-order estimate of `activation_patching`, from two forward
    passes and one backward pass: `effect ~ sum over the unit of (clean - corrupted) * d metric / d activation`,
    the gradient taken on the corrupted run. Good where the metric is near-linear in the patched activation.
    """
    names = _check_names(model, hook_names)
    model.eval()
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean_tokens, list(names))
    corrupted_value, corrupted_cache, grads = model.run_with_cache_and_grad(corrupted_tokens, metric, list(names))
    rows = []
    for name in names:
        pos_dim, head_dim = _unit_dims(name, per)
        contribution = (clean_cache[name] - corrupted_cache[name]) * grads[name]
        keep = [d for d in (pos_dim, head_dim) if d is not None]
        other = [d for d in range(contribution.ndim) if d not in keep]
        rows.append(contribution.permute(*keep, *other).flatten(len(keep)).sum(-1))
    return PatchingResult(names, per, torch.stack(rows).detach(), float(corrupted_value), float(metric(clean_logits)))
