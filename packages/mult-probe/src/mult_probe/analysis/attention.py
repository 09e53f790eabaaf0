"""The attention "DAG" (the paper's binary attention tree, spec 4.6): which operand digits each answer step reads.

The paper's ICoT mechanism: layer 1 heads at answer step s attend to a pair {a_i, b_j}, caching a_i b_j in the
residual stream of step s; layer 2 heads at step t attend to earlier steps s and so gather every product with
i + j <= t (plus c_hat_{t-1}). `attention_graph` averages `blocks.{l}.attn.hook_pattern` over teacher-forced
examples at the query positions that predict c_0 .. c_{K-1}, keeps the edges above a threshold, and measures:

- pair purity (first layer): the share of a head's attention on its single most-attended a_i plus its single
  most-attended b_j, per example and step, averaged;
- answer mass (last layer): the share of attention on the `####` and answer tokens (the earlier steps' streams);
- coverage: per step t, the share of the needed pairs {(i, j): i + j <= t} that the graph reaches: pairs cached at
  a step s (first-layer head with both a_i and b_j above threshold) that a last-layer head at step t reads (edge to
  the stream of step s, including t itself), plus pairs a last-layer head reads directly.

`edge_knockout` removes one attention edge and renormalises the row (applied once per forward pass; the reference
`HookedModel` applies its pattern hook twice, doubling interventions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mult_probe.analysis._common import check_pairs, collect, token_roles
from mult_probe.data import encode_nocot
from mult_probe.model import Transformer
from repro_core.errors import ConfigError

__all__ = ["AttentionEdge", "AttentionGraph", "attention_graph", "edge_knockout", "plot_attention_graph"]


@dataclass(frozen=True)
class AttentionEdge:
    """One kept edge: at answer step `step` (the query predicting c_step), `layer.head` reads `source`."""

    layer: int
    head: int
    step: int
    source: str
    source_position: int
    weight: float


@dataclass(frozen=True)
class AttentionGraph:
    """Mean attention of the answer steps and the graph extracted from it.

    Attributes:
        roles: role of every key position (`a0`, `*`, `b2`, `<eos>`, `####`, `c0`, ...).
        steps: `c0..c{K-1}`; row t is the query position that predicts c_t.
        pattern: `[n_layers, n_heads, K, T]` attention averaged over examples.
        edges: edges with mean weight >= `threshold`.
        pair_purity: `[n_heads]` first-layer heads' mass on their top a_i plus top b_j.
        answer_mass: `[n_heads]` last-layer heads' mass on `####` and the answer tokens.
        coverage: `[K]` share of the needed pairs {i + j <= t} the graph reaches at step t.
        extra_pairs: `[K]` reached pairs with i + j > t (not needed for c_t).
        threshold: the edge threshold.
        n: number of examples.
    """

    roles: tuple[str, ...]
    steps: tuple[str, ...]
    pattern: np.ndarray
    edges: tuple[AttentionEdge, ...]
    pair_purity: np.ndarray
    answer_mass: np.ndarray
    coverage: np.ndarray
    extra_pairs: np.ndarray
    threshold: float
    n: int


def _pairs_read(row: np.ndarray, a_pos: list[int], b_pos: list[int], threshold: float) -> set[tuple[int, int]]:
    """Pairs (i, j) with both a_i and b_j at or above the threshold in one attention row `[T]`."""
    a_hit = [i for i, p in enumerate(a_pos) if row[p] >= threshold]
    b_hit = [j for j, p in enumerate(b_pos) if row[p] >= threshold]
    return {(i, j) for i in a_hit for j in b_hit}


@torch.no_grad()
def attention_graph(
    model: Transformer,
    pairs: Any,
    k: int,
    l: int | None = None,
    *,
    threshold: float = 0.1,
    batch_size: int = 500,
) -> AttentionGraph:
    """Average the answer steps' attention patterns over `pairs` (`[n, 2]`) and extract the reading graph."""
    l = k if l is None else l
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold: must be in (0, 1], got {threshold}")
    pairs = check_pairs(pairs, k, l)
    cfg = model.cfg
    batch = encode_nocot(pairs, k, l)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(cfg.n_layers)]
    _, cache = collect(model, batch.input_ids, names, batch_size=batch_size)
    q = torch.as_tensor(batch.predict_positions)
    per_example = torch.stack([cache[name][:, :, q] for name in names], dim=1).double()  # [n, L, H, K, T]
    pattern = per_example.mean(dim=0).numpy()
    roles = tuple(token_roles(k, l))
    a_pos, b_pos = list(range(k)), list(range(k + 1, k + 1 + l))
    first = per_example[:, 0]  # [n, H, K, T]
    purity = (first[..., a_pos].max(dim=-1).values + first[..., b_pos].max(dim=-1).values).mean(dim=(0, 2))
    answer_start = batch.prompt_length - 1  # the `####` token: the stream that predicts c_0
    answer_mass = per_example[:, -1, ..., answer_start:].sum(dim=-1).mean(dim=(0, 2))
    edges = []
    for (layer, head, step, pos), weight in np.ndenumerate(pattern):
        if weight >= threshold:
            edges.append(AttentionEdge(layer, head, step, roles[pos], pos, float(weight)))
    # pairs cached at each step's stream by the first layer
    cached = [
        set().union(*(_pairs_read(pattern[0, h, s], a_pos, b_pos, threshold) for h in range(cfg.n_heads)))
        for s in range(k + l)
    ]
    coverage, extra = np.zeros(k + l), np.zeros(k + l, dtype=np.int64)
    for t in range(k + l):
        reached: set[tuple[int, int]] = set()
        for h in range(cfg.n_heads):
            row = pattern[-1, h, t]
            reached |= _pairs_read(row, a_pos, b_pos, threshold)
            if cfg.n_layers == 1:
                continue
            for s in range(t + 1):
                if row[answer_start + s] >= threshold:
                    reached |= cached[s]
        needed = {(i, j) for i in range(k) for j in range(l) if i + j <= t}
        coverage[t] = len(reached & needed) / len(needed)
        extra[t] = len(reached - needed)
    return AttentionGraph(
        roles=roles,
        steps=tuple(f"c{t}" for t in range(k + l)),
        pattern=pattern,
        edges=tuple(edges),
        pair_purity=purity.numpy(),
        answer_mass=answer_mass.numpy(),
        coverage=coverage,
        extra_pairs=extra,
        threshold=threshold,
        n=len(pairs),
    )


@torch.no_grad()
def edge_knockout(
    model: Transformer,
    pairs: Any,
    k: int,
    l: int | None = None,
    *,
    layer: int,
    head: int,
    step: int,
    source_position: int,
) -> dict[str, float]:
    """Remove the edge (query predicting c_step) -> `source_position` of `layer.head`, renormalising the row.

    Returns the mean logit of the correct c_step and the teacher-forced accuracy at that step, before and after.
    """
    l = k if l is None else l
    pairs = check_pairs(pairs, k, l)
    cfg = model.cfg
    if not 0 <= layer < cfg.n_layers or not 0 <= head < cfg.n_heads:
        raise ConfigError(f"layer/head: {layer}.{head} is not a head of a {cfg.n_layers}x{cfg.n_heads} model")
    if not 0 <= step < k + l:
        raise ConfigError(f"step: must be in 0..{k + l - 1}, got {step}")
    batch = encode_nocot(pairs, k, l)
    query = int(batch.predict_positions[step])
    if not 0 <= source_position <= query:
        raise ConfigError(f"source_position: must be in 0..{query} (causal), got {source_position}")

    def cut(pattern: torch.Tensor, hook: object) -> torch.Tensor:
        pattern = pattern.clone()
        pattern[:, head, query, source_position] = 0.0
        total = pattern[:, head, query].sum(dim=-1, keepdim=True).clamp_min(1e-12)
        pattern[:, head, query] = pattern[:, head, query] / total
        return pattern

    answer = torch.as_tensor(batch.answer[:, step])
    before, _ = collect(model, batch.input_ids, [])
    with model.hooks([(f"blocks.{layer}.attn.hook_pattern", cut)]):
        after, _ = collect(model, batch.input_ids, [])
    out = {}
    for name, logits in (("before", before), ("after", after)):
        row = logits[:, query]
        out[f"logit_{name}"] = float(row.gather(-1, answer[:, None]).mean())
        out[f"accuracy_{name}"] = float((row.argmax(-1) == answer).double().mean())
    return out


def plot_attention_graph(result: AttentionGraph, *, title: str = "") -> Any:
    """A grid of heat maps (layers x heads): mean attention of each answer step (rows) over key positions."""
    from repro_core.report import new_figure

    n_layers, n_heads, n_steps, n_keys = result.pattern.shape
    figure = new_figure(1.0 + 0.2 * n_keys * n_heads, 0.8 + (0.25 * n_steps + 0.8) * n_layers)
    for layer in range(n_layers):
        for head in range(n_heads):
            axes = figure.add_subplot(n_layers, n_heads, layer * n_heads + head + 1)
            axes.imshow(result.pattern[layer, head], cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
            axes.set_xticks(range(n_keys), result.roles, fontsize=5, rotation=90)
            axes.set_yticks(range(n_steps), result.steps if head == 0 else [""] * n_steps, fontsize=6)
            label = f"L{layer}H{head}"
            if layer == 0:
                label += f" purity {result.pair_purity[head]:.2f}"
            if layer == n_layers - 1:
                label += f" ans {result.answer_mass[head]:.2f}"
            axes.set_title(label, fontsize=7)
    cover = " ".join(f"{c:.2f}" for c in result.coverage)
    figure.suptitle(title or f"attention of the answer steps (n = {result.n}); coverage of i+j<=t: {cover}", fontsize=8)
    return figure
