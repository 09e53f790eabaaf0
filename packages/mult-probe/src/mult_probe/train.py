"""Three objectives in one loop: standard fine-tuning (`sft`), the running-sum auxiliary loss (`aux`) and implicit
chain of thought by stepwise internalisation (`icot`, schedule in `mult_probe.icot`).

`sft` and `aux` train on the no-CoT layout `a * b <eos> <eos> #### c_0 .. c_{k+l-1} <eos>` (`data.encode_nocot`)
with next-token cross entropy on everything after the first `<eos>` (Deng et al.'s masking). The `aux` objective adds
the paper's loss: bias-free linear regression heads `w_h: [d_head]` on the pre-W_O outputs (`attn.hook_z`) of a few
heads of one layer (default: heads 0 and 1 of the last layer) predict the running sum c_hat_t at the token of c_t:

    L = L_LM + aux_lambda * mean_{h, t} (w_h . z_h(t) - c_hat_t / aux_target_scale)^2

The paper's lambda, head choice and target scaling are not published; all three are configurable. The default
`aux_target_scale = 100` keeps the targets O(1) (raw c_hat reaches ~260 for 4x4, an un-normalised MSE would start
near 1e4).

Runs are deterministic functions of the config: the model is initialised from `torch_generator(seed, "init")`, the
batch at step s is drawn from `numpy_rng(seed, "batch", s)` (fresh pairs, or indices into a fixed training split),
so a run resumed from a `repro_core.checkpoint` checkpoint ends with exactly the weights of an uninterrupted run.

`icot` trains on `a * b <eos> cot <eos> #### answer <eos>` and cuts `scheduled(step) + offset` CoT tokens from each
sequence (`icot.scheduled_removal`, `icot.removal_offsets`, also pure functions of (seed, step)); a fresh AdamW
starts whenever the scheduled count grows (`icot.optimizer_reset`). Its evaluation has two parts: the CoT-aware
one (`icot.evaluate_cot`, `EvalResult.cot_aware`, the main score: greedy CoT then answer, in the layout of the
count removed in the last training step) and the no-CoT one (what the model does once the CoT is internalised;
before full removal it under-states the model).

Data parallel (`torchrun`, `repro_core.distributed.init_from_env`): with a process group of W > 1 ranks, every
rank draws the same global batch of `batch_size` pairs and takes `pairs[rank::W]`; each rank's loss is its share
of the *global* mean (token sums over the global label count, all-reduced), and the gradients are all-reduced by
sum, so W processes follow the one-process run up to float summation order and every rank holds the same weights.
Rank 0 writes the checkpoints (with every rank's RNG state); all ranks evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mult_probe.data import NoCotBatch, cot_length, encode_nocot, generate_operands
from mult_probe.dynamics import gradient_statistics
from mult_probe.icot import (
    CotEvalResult,
    IcotConfig,
    encode_cot,
    evaluate_cot,
    optimizer_reset,
    removal_offsets,
    removed_at,
    scheduled_removal,
)
from mult_probe.model import ModelConfig, Transformer
from repro_core.checkpoint import CheckpointManager, load_checkpoint
from repro_core.config import checked_fields
from repro_core.distributed import all_reduce_gradients, data_parallel_group, rank_seed, write_on_main
from repro_core.errors import ConfigError
from repro_core.metrics import exact_match, per_position_accuracy
from repro_core.seeding import derive_seed, fork_rng, numpy_rng, torch_generator

__all__ = [
    "DYNAMICS_CSV",
    "RESUMABLE_CHANGES",
    "AuxHeads",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "evaluate",
    "losses",
    "position_dynamics",
    "sample_pairs",
    "train",
]

logger = logging.getLogger(__name__)

Method = Literal["sft", "aux", "icot"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (JSON round trip with `to_json` / `from_json`)."""

    method: Method = "sft"  #: "sft" (answer only), "aux" (+ running-sum regression on hook_z) or "icot" (CoT removal)
    k: int = 3  #: digits of the first operand
    l: int | None = None  #: digits of the second operand (default k)
    model: ModelConfig = field(default_factory=ModelConfig.tiny)  #: the transformer
    steps: int = 1500  #: optimiser steps
    batch_size: int = 128  #: sequences per step
    lr: float = 1e-3  #: AdamW learning rate (constant, as in Deng et al.; the paper uses 5e-5 at width 768)
    weight_decay: float = 0.01  #: AdamW weight decay (torch's default, as Deng et al.)
    grad_clip: float | None = 1.0  #: max gradient norm (None: no clipping)
    train_size: int | None = None  #: fixed training split size; None draws fresh pairs every step
    seed: int = 0  #: the one seed of the run (init, data, batches, dropout)
    eval_size: int = 1000  #: held-out pairs for evaluation (excluded from training)
    eval_every: int = 0  #: evaluate every this many steps (0: only at the end)
    checkpoint_every: int = 0  #: checkpoint every this many steps when a run directory is given (0: at the end)
    aux_layer: int = -1  #: layer whose heads carry the regression heads (negative counts from the end)
    aux_heads: tuple[int, ...] = (0, 1)  #: which heads (the paper uses 2 heads of the last layer)
    aux_lambda: float = 1.0  #: weight of the auxiliary loss
    aux_target_scale: float = 100.0  #: c_hat is divided by this before the MSE
    icot: IcotConfig = field(default_factory=IcotConfig)  #: the CoT removal schedule (method "icot" only)

    def __post_init__(self) -> None:
        if self.method not in ("sft", "aux", "icot"):
            raise ConfigError(f"method: must be 'sft', 'aux' or 'icot', got {self.method!r}")
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if isinstance(self.icot, dict):
            object.__setattr__(self, "icot", IcotConfig.from_dict(self.icot))
        object.__setattr__(self, "aux_heads", tuple(int(h) for h in self.aux_heads))
        for name in ("k", "steps", "batch_size", "eval_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.l is not None and (not isinstance(self.l, int) or self.l < 1):
            raise ConfigError(f"l: must be an integer >= 1 or None, got {self.l!r}")
        if self.k + self.n_digits_b > 18:
            raise ConfigError("k + l: products beyond 18 digits overflow int64; use k + l <= 18")
        if self.train_size is not None and self.train_size < 1:
            raise ConfigError(f"train_size: must be >= 1 or None, got {self.train_size}")
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"grad_clip: must be > 0 or None, got {self.grad_clip}")
        if self.sequence_length > self.model.n_ctx:
            raise ConfigError(
                f"model.n_ctx: {self.model.n_ctx} is shorter than the sequence length {self.sequence_length}"
            )
        if self.method == "icot" and self.icot.steps_per_epoch is None and self.train_size is None:
            raise ConfigError("icot.steps_per_epoch: required for method 'icot' without a fixed train_size")
        if not -self.model.n_layers <= self.aux_layer < self.model.n_layers:
            raise ConfigError(f"aux_layer: {self.aux_layer} is not a layer of a {self.model.n_layers}-layer model")
        if not self.aux_heads or len(set(self.aux_heads)) != len(self.aux_heads):
            raise ConfigError(f"aux_heads: must be distinct head indices, got {self.aux_heads}")
        if any(not 0 <= h < self.model.n_heads for h in self.aux_heads):
            raise ConfigError(f"aux_heads: {self.aux_heads} out of range for {self.model.n_heads} heads")
        if self.aux_lambda < 0:
            raise ConfigError(f"aux_lambda: must be >= 0, got {self.aux_lambda}")
        if not self.aux_target_scale > 0:
            raise ConfigError(f"aux_target_scale: must be > 0, got {self.aux_target_scale}")

    @property
    def n_digits_b(self) -> int:
        return self.k if self.l is None else self.l

    @property
    def sequence_length(self) -> int:
        """Tokens of the longest training sequence (the full CoT one for icot)."""
        base = 2 * (self.k + self.n_digits_b) + 5
        return base + cot_length(self.k, self.n_digits_b) if self.method == "icot" else base

    @property
    def steps_per_epoch(self) -> int:
        """ICoT epoch length: `icot.steps_per_epoch`, else ceil(train_size / batch_size) (Deng's DataLoader)."""
        if self.icot.steps_per_epoch is not None:
            return self.icot.steps_per_epoch
        if self.train_size is None:
            raise ConfigError("icot.steps_per_epoch: required without a fixed train_size")
        return -(-self.train_size // self.batch_size)

    @property
    def layer(self) -> int:
        """The aux layer as a non-negative index."""
        return self.aux_layer % self.model.n_layers

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["aux_heads"] = list(self.aux_heads)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = checked_fields(cls, data, "train config")
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_dict(data["model"])
        if isinstance(data.get("icot"), dict):
            data["icot"] = IcotConfig.from_dict(data["icot"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


class AuxHeads(nn.Module):
    """Bias-free linear regression heads on per-head attention outputs (the paper's `linear_regression_heads`)."""

    def __init__(self, heads: Iterable[int], d_head: int) -> None:
        super().__init__()
        self.heads = tuple(heads)
        self.weight = nn.Parameter(torch.zeros(len(self.heads), d_head))  # [n_aux_heads, d_head]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, K, n_heads, d_head] (hook_z at the c_t tokens) -> predictions [B, K, n_aux_heads]."""
        return torch.einsum("bkhe,he->bkh", z[:, :, list(self.heads)], self.weight)


@dataclass(frozen=True)
class EvalResult:
    """Greedy-generation and teacher-forced accuracies on held-out pairs (positions c_0 .. c_{k+l-1}).

    The top-level figures are the no-CoT layout's; ICoT runs add `cot_aware`, the model's own greedy CoT followed
    by its answer (the main ICoT score until the CoT is fully removed).
    """

    exact_match: float  #: generated answer equals the product, all digits (greedy decoding)
    digit_accuracy: list[float]  #: per-position accuracy of the generated digits
    teacher_forced_exact_match: float  #: argmax at every answer position given the true prefix
    teacher_forced_digit_accuracy: list[float]  #: per position, given the true prefix
    position_loss: list[float]  #: mean cross entropy per answer position (chance: ln 10 = 2.303)
    n: int  #: number of evaluation pairs
    cot_aware: CotEvalResult | None = None  #: icot: greedy CoT then answer (`icot.evaluate_cot`); else None

    @property
    def mean_digit_accuracy(self) -> float:
        return float(np.mean(self.digit_accuracy))


@dataclass
class TrainResult:
    """A finished run: the model, the aux heads (aux only), the log and the final evaluation."""

    config: TrainConfig
    model: Transformer
    aux_heads: AuxHeads | None
    history: list[dict[str, Any]]
    final: EvalResult
    resumed_from: int | None = None


def sample_pairs(
    config: TrainConfig, step: int, train_pairs: np.ndarray | None, banned: set[tuple[int, int]]
) -> np.ndarray:
    """`[batch_size, 2]` operand pairs of step `step`: a pure function of (seed, step), so resuming is exact."""
    rng = numpy_rng(config.seed, "mult-probe", "batch", step)
    if train_pairs is not None:
        return train_pairs[rng.integers(0, len(train_pairs), size=config.batch_size)]
    k, l = config.k, config.n_digits_b
    out = np.empty((config.batch_size, 2), dtype=np.int64)
    filled = 0
    while filled < config.batch_size:
        xs = rng.integers(10 ** (k - 1), 10**k, size=config.batch_size)
        ys = rng.integers(10 ** (l - 1), 10**l, size=config.batch_size)
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            if (x, y) not in banned and filled < config.batch_size:
                out[filled] = (x, y)
                filled += 1
    return out


def losses(
    model: Transformer,
    aux_heads: AuxHeads | None,
    pairs: np.ndarray,
    config: TrainConfig,
    *,
    remove: np.ndarray | float | None = None,
    norm: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Total loss of a batch and its parts: `lm`, `aux`, `position_loss` (`[k+l]`, CE per answer digit).

    Args:
        remove: icot only, CoT tokens cut from each row (`[n]` or a scalar; default none).
        norm: (label tokens, aux terms) of the *global* batch in a data-parallel step: the loss is then this
            rank's share of the global mean (sums over these counts), and `parts` hold sums (`lm_sum`, `aux_sum`,
            `position_sum`) for an all-reduce. None: means over this batch.
    """
    device = next(model.parameters()).device
    if config.method == "icot":
        batch = encode_cot(
            pairs, config.k, config.n_digits_b, remove=0 if remove is None else remove, side=config.icot.removal_side
        )
        predict = torch.as_tensor(batch.predict_positions, device=device)  # [B, K]
    else:
        batch = encode_nocot(pairs, config.k, config.n_digits_b)
        predict = torch.as_tensor(batch.predict_positions, device=device).expand(len(pairs), -1)
    tokens = torch.as_tensor(batch.input_ids, device=device)
    labels = torch.as_tensor(batch.labels, device=device)
    use_aux = aux_heads is not None and config.method == "aux"
    hook = f"blocks.{config.layer}.attn.hook_z"
    if use_aux:
        logits, cache = model.run_with_cache(tokens, names_filter=hook, detach=False)
    else:
        logits, cache = model(tokens), {}
    token_loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none")
    token_loss = token_loss.view_as(labels)
    position = token_loss.gather(1, predict).detach()  # [B, K]
    n_tokens = (labels != -100).sum() if norm is None else norm[0]
    lm = token_loss.sum() / n_tokens
    parts: dict[str, Any] = {"lm": lm.detach(), "position_loss": position.mean(dim=0)}
    if norm is not None:
        parts.update(lm_sum=token_loss.sum().detach(), position_sum=position.sum(dim=0))
    total = lm
    if use_aux:
        assert aux_heads is not None
        assert isinstance(batch, NoCotBatch)
        z = cache[hook][:, batch.c_token_positions]  # [B, K, H, d_head]
        target = torch.as_tensor(batch.c_hat, device=device, dtype=z.dtype) / config.aux_target_scale
        squared = (aux_heads(z) - target[:, :, None]) ** 2
        aux = squared.mean() if norm is None else squared.sum() / norm[1]
        parts["aux"] = aux.detach()
        if norm is not None:
            parts["aux_sum"] = squared.sum().detach()
        total = lm + config.aux_lambda * aux
    return total, parts


def position_dynamics(
    model: Transformer, pairs: np.ndarray, config: TrainConfig, *, remove: np.ndarray | float | None = None
) -> dict[str, Any]:
    """Per answer position t: the batch-mean cross entropy L_t and the gradient norm ||dL_t/dtheta|| (spec 4.10).

    The paper's training-dynamics figure: learned positions' gradients go to ~0 while the middle digits keep
    receiving gradient at a plateaued loss. Computed with dropout off (so the run's dropout stream, hence its
    weights, are unchanged) over the model's parameters (not the aux heads: they do not enter L_t), one backward
    pass per position. Returns `mult_probe.dynamics.gradient_statistics`' dict: `position_loss`, `grad_norm`,
    `grad_ratio`, `cos`, `dd` (each `[k+l]`, c_0 first), `loss_total`, `grad_norm_total` and `handle_ratio`
    (definitions in `mult_probe.dynamics`).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        if config.method == "icot":
            cot = encode_cot(
                pairs,
                config.k,
                config.n_digits_b,
                remove=0 if remove is None else remove,
                side=config.icot.removal_side,
            )
            tokens, labels, predict = cot.input_ids, cot.labels, torch.as_tensor(cot.predict_positions, device=device)
        else:
            nocot = encode_nocot(pairs, config.k, config.n_digits_b)
            tokens, labels = nocot.input_ids, nocot.labels
            predict = torch.as_tensor(nocot.predict_positions, device=device).expand(len(pairs), -1)
        logits = model(torch.as_tensor(tokens, device=device))
        targets = torch.as_tensor(labels, device=device).gather(1, predict)  # [B, K] answer digits
        picked = logits.gather(1, predict[:, :, None].expand(-1, -1, logits.shape[-1]))  # [B, K, vocab]
        per_position = F.cross_entropy(picked.transpose(1, 2), targets, reduction="none").mean(dim=0)  # [K]
        params = [p for p in model.parameters() if p.requires_grad]
        n_positions = len(per_position)
        per_position_grads = [
            torch.autograd.grad(per_position[t], params, retain_graph=t + 1 < n_positions, allow_unused=True)
            for t in range(n_positions)
        ]
        # the Gram matrix g_t . g_s in float64, one parameter tensor at a time (memory: one stacked tensor)
        gram = torch.zeros(n_positions, n_positions, dtype=torch.float64)
        for index, param in enumerate(params):
            stacked = torch.stack(
                [
                    torch.zeros(param.numel(), dtype=torch.float64, device=param.device)
                    if grads[index] is None
                    else grads[index].detach().reshape(-1).double()
                    for grads in per_position_grads
                ]
            )
            gram += (stacked @ stacked.T).cpu()
    finally:
        model.train(was_training)
    return gradient_statistics([float(x) for x in per_position.detach()], gram.numpy())


@torch.no_grad()
def evaluate(
    model: Transformer,
    pairs: np.ndarray,
    k: int,
    l: int | None = None,
    *,
    batch_size: int = 500,
    cot_removed: int | float | None = None,
    removal_side: Literal["left", "right"] = "left",
) -> EvalResult:
    """Greedy-generation exact match and per-digit accuracy, plus teacher-forced figures, on pairs `[n, 2]`.

    With `cot_removed` (an ICoT model; `icot.removed_at` gives a checkpoint's count) the result also holds the
    CoT-aware evaluation in the layout with that many CoT tokens cut at `removal_side`.
    """
    l = k if l is None else l
    cot_aware = None
    if cot_removed is not None:
        cot_aware = evaluate_cot(model, pairs, k, l, removed=cot_removed, side=removal_side, batch_size=batch_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generated, forced, answers, pos_losses = [], [], [], []
    try:
        for start in range(0, len(pairs), batch_size):
            batch = encode_nocot(pairs[start : start + batch_size], k, l)
            tokens = torch.as_tensor(batch.input_ids, device=device)
            logits = model(tokens)[:, batch.predict_positions]  # [B, K, vocab]
            answer = torch.as_tensor(batch.answer, device=device)
            pos_losses.append(F.cross_entropy(logits.transpose(1, 2), answer, reduction="none").sum(dim=0))
            forced.append(logits.argmax(dim=-1).cpu().numpy())
            out = model.generate(tokens[:, : batch.prompt_length], k + l)
            generated.append(out[:, batch.prompt_length :].cpu().numpy())
            answers.append(batch.answer)
    finally:
        model.train(was_training)
    gen, tf, ans = np.concatenate(generated), np.concatenate(forced), np.concatenate(answers)
    position_loss = (torch.stack(pos_losses).sum(dim=0) / len(ans)).cpu().tolist()
    return EvalResult(
        exact_match=float(exact_match(gen, ans)),
        digit_accuracy=per_position_accuracy(gen, ans).tolist(),
        teacher_forced_exact_match=float(exact_match(tf, ans)),
        teacher_forced_digit_accuracy=per_position_accuracy(tf, ans).tolist(),
        position_loss=position_loss,
        n=len(ans),
        cot_aware=cot_aware,
    )


def _eval_pairs(config: TrainConfig) -> np.ndarray:
    return generate_operands(config.k, config.n_digits_b, n=config.eval_size, seed=derive_seed(config.seed, "eval"))


def train(
    config: TrainConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    eval_pairs: np.ndarray | None = None,
    exclude: Iterable[tuple[int, int]] = (),
    device: str | torch.device = "cpu",
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    distributed: bool | None = None,
    dynamics_every: int = 0,
) -> TrainResult:
    """Train one model; with `run_dir`, checkpoint there and resume from its latest checkpoint.

    Args:
        config: the run.
        run_dir: checkpoint directory (`ckpt-<step>.pt` via `repro_core.checkpoint.CheckpointManager`, newest 2 kept;
            with `dynamics_every`, also `dynamics.csv`). A run there resumes; `config` may differ from its own only
            in `RESUMABLE_CHANGES` (more steps grow the run, bit-identically), else `ConfigError`.
        eval_pairs: `[n, 2]` held-out operand pairs (default: `eval_size` seeded pairs); always excluded from training.
        exclude: further operand pairs never to train on (e.g. Deng's valid/test operands).
        device: where to train (under torchrun with nccl: this rank's `cuda:LOCAL_RANK`).
        on_step: called as `on_step(step, logs)` after each step (logs hold `loss`, `lm`, `aux` floats; icot adds
            `cot_removed` and `optimizer_reset`).
        dynamics_every: every this many steps (0: never) log `dynamics` (`position_dynamics`: per-position loss and
            gradient norm on the step's batch, before its update) and keep that step's logs in the history. It does
            not change the weights, so it is not part of the config; under torchrun each rank measures its shard.
        distributed: data parallel over the running process group (module docstring); None: whenever one with more
            than one rank is running; True without one raises `ConfigError`.
    """
    if isinstance(dynamics_every, bool) or not isinstance(dynamics_every, int) or dynamics_every < 0:
        raise ConfigError(f"dynamics_every: must be an integer >= 0, got {dynamics_every!r}")
    rank, world = data_parallel_group(distributed)
    if world > 1 and config.batch_size % world:
        raise ConfigError(f"batch_size: {config.batch_size} is not divisible by the {world} data-parallel ranks")
    eval_pairs = _eval_pairs(config) if eval_pairs is None else np.asarray(eval_pairs, dtype=np.int64)
    banned = {(int(a), int(b)) for a, b in eval_pairs} | {(int(a), int(b)) for a, b in exclude}
    held_out_digest = _pairs_digest(banned)
    train_pairs = None
    if config.train_size is not None:
        train_pairs = generate_operands(
            config.k, config.n_digits_b, n=config.train_size, seed=derive_seed(config.seed, "train"), exclude=banned
        )
    device = torch.device(device)
    model = Transformer(config.model, generator=torch_generator(config.seed, "init")).to(device)
    aux_heads = AuxHeads(config.aux_heads, config.model.d_head).to(device) if config.method == "aux" else None
    params = list(model.parameters()) + ([] if aux_heads is None else list(aux_heads.parameters()))

    def new_optimizer() -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    optimizer = new_optimizer()
    manager = None if run_dir is None else CheckpointManager(Path(run_dir), keep=2)
    start, history, resumed_from = 0, [], None
    icot = config.method == "icot"
    cot_len = cot_length(config.k, config.n_digits_b)
    epoch_steps = config.steps_per_epoch if icot else 0
    # data-parallel counts of the global batch: label tokens are all-reduced per step (they vary with icot)
    n_aux_terms = float(config.batch_size * (config.k + config.n_digits_b) * len(config.aux_heads))

    def run_eval(done: int) -> EvalResult:
        """No-CoT evaluation; for icot also the CoT-aware one at the count removed in the last trained step."""
        removed = removed_at(done, epoch_steps, config.icot, cot_len) if icot else None
        return evaluate(
            model, eval_pairs, config.k, config.n_digits_b, cot_removed=removed, removal_side=config.icot.removal_side
        )

    with fork_rng():  # dropout draws from torch's global stream: seed it for this run, restore it afterwards
        dropout_seed = derive_seed(config.seed, "dropout")
        torch.manual_seed(dropout_seed if rank == 0 else rank_seed(dropout_seed, rank))
        latest = None if manager is None else manager.latest()
        state = None if latest is None else load_checkpoint(latest)
        if state is not None:
            _check_resumable(state, config, run_dir, latest, held_out_digest)
            model.load_state_dict(state["model"])
            if aux_heads is not None:
                aux_heads.load_state_dict(state["aux_heads"])
            optimizer.load_state_dict(state["optimizer"])
            _set_rng_state(state, rank, world, device)
            start, history, resumed_from = int(state["step"]), list(state["history"]), int(state["step"])
            logger.info("resumed %s from step %d", run_dir, start)

        def save(step: int) -> None:
            if manager is None:
                return
            rng = _rng_states(rank, world, device)
            snapshot = {
                "step": step,
                "config": config.to_json(),
                "model": model.state_dict(),
                "aux_heads": {} if aux_heads is None else aux_heads.state_dict(),
                "optimizer": optimizer.state_dict(),
                "history": history,
                "held_out_digest": held_out_digest,
                **rng,
            }
            _check_finite_weights(params, step, manager)
            if world > 1:
                write_on_main(manager.save, snapshot, step)
                write_on_main(_write_dynamics, history, manager.directory)
            else:
                manager.save(snapshot, step)
                _write_dynamics(history, manager.directory)

        model.train()
        for step in range(start, config.steps):
            pairs = sample_pairs(config, step, train_pairs, banned)
            remove = None
            logs: dict[str, Any] = {"step": step + 1}
            if icot:
                scheduled = scheduled_removal(step, epoch_steps, config.icot)
                if step < config.icot.pretrain_epochs * epoch_steps:
                    remove = np.full(len(pairs), float(scheduled))
                else:
                    remove = scheduled + removal_offsets(config.seed, step, len(pairs), config.icot.smoothing_lambda)
                reset = optimizer_reset(step, epoch_steps, config.icot, cot_len)
                if reset:
                    optimizer.zero_grad(set_to_none=True)
                    optimizer = new_optimizer()
                    logger.debug("step %d: %s CoT tokens scheduled, fresh optimizer", step, scheduled)
                logs.update(cot_removed=int(min(scheduled, cot_len)), optimizer_reset=reset)
            norm = None
            if world > 1:
                pairs = pairs[rank::world]
                remove = None if remove is None else remove[rank::world]
                norm = (_global_label_count(config, pairs, remove, device), n_aux_terms)
            if dynamics_every and (step + 1) % dynamics_every == 0:
                logs["dynamics"] = position_dynamics(model, pairs, config, remove=remove)
            loss, parts = losses(model, aux_heads, pairs, config, remove=remove, norm=norm)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                all_reduce_gradients(params)
                parts = _all_reduce_parts(parts, config.batch_size, norm)
                loss = parts["lm"] + (config.aux_lambda * parts["aux"] if "aux" in parts else 0.0)
            loss_value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            if not math.isfinite(loss_value):  # the same global loss on every rank: all of them stop here
                raise TrainingDiverged(
                    f"the loss became {loss_value} at step {step + 1} (the run diverged; this update was not made); "
                    f"{_last_good(manager)}; lower the learning rate or aux_lambda"
                )
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            done = step + 1
            logs.update(
                loss=loss_value,
                lm=float(parts["lm"]),
                position_loss=[float(x) for x in parts["position_loss"]],
            )
            if "aux" in parts:
                logs["aux"] = float(parts["aux"])
            if config.eval_every and done % config.eval_every == 0 and done < config.steps:
                result = run_eval(done)
                logs["eval"] = dataclasses.asdict(result)
            if "eval" in logs or "dynamics" in logs:
                history.append(logs)
            if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
                save(done)
            if on_step is not None:
                on_step(done, logs)
        _check_finite_weights(params, config.steps, manager)
        final = run_eval(config.steps)
        if start < config.steps:  # a finished run reloaded from its last checkpoint only re-evaluates
            end = {"step": config.steps, "eval": dataclasses.asdict(final)}
            if icot:
                end["cot_removed"] = int(min(scheduled_removal(config.steps - 1, epoch_steps, config.icot), cot_len))
            history.append(end)
            save(config.steps)
    return TrainResult(
        config=config, model=model, aux_heads=aux_heads, history=history, final=final, resumed_from=resumed_from
    )


class TrainingDiverged(ConfigError):
    """The loss or the weights became NaN or infinite: the run stops (CLI exit 2); checkpoints on disk are kept.

    Nothing is saved once a non-finite value appears, so the newest checkpoint in the run directory is the last
    good state (the message names it).
    """


#: Fields a resumed run may change: they decide how long it runs and what it logs, not the steps it takes.
RESUMABLE_CHANGES = ("steps", "eval_every", "checkpoint_every")


def _pairs_digest(pairs: set[tuple[int, int]]) -> str:
    """A fingerprint of the held-out and excluded pairs: they shape every batch, so a resumed run must share them."""
    import hashlib

    ordered = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def _check_resumable(
    state: dict[str, Any], config: TrainConfig, run_dir: Any, path: Path | None, held_out_digest: str
) -> None:
    """Refuse to resume `state` as `config` unless the run continues exactly (only `RESUMABLE_CHANGES` differ).

    Batches, removals and dropout are pure functions of (seed, step) and the schedule does not depend on the total
    step count, so asking for more steps continues the same trajectory: the weights at step M equal those of a
    run asked for M steps from the start. Fewer steps than already trained cannot be undone.
    """
    try:
        saved = TrainConfig.from_json(state["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"run_dir: {path} holds a config this version cannot read ({exc})") from exc
    differing = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)
    ]
    if differing:
        raise ConfigError(
            f"run_dir: {run_dir} holds a run with a different {', '.join(differing)} (only steps, eval_every and "
            "checkpoint_every may change on resume); use a new directory"
        )
    done = int(state["step"])
    if config.steps < done:
        raise ConfigError(
            f"steps: the run in {run_dir} has already trained {done} steps; a resumed run can only add steps "
            f"(ask for {done} or more)"
        )
    saved_digest = state.get("held_out_digest")
    if saved_digest is not None and saved_digest != held_out_digest:
        raise ConfigError(
            f"run_dir: {run_dir} was trained with other held-out or excluded pairs (they decide every batch); "
            "pass the same evaluation and exclude files as the first run"
        )


def _last_good(manager: CheckpointManager | None) -> str:
    if manager is None:
        return "no run directory, nothing was saved"
    latest = manager.latest()
    if latest is None:
        return f"no checkpoint was written to {manager.directory} yet"
    return f"the last good checkpoint {latest} (step {manager.steps()[-1]}) is kept"


def _check_finite_weights(params: list[torch.Tensor], step: int, manager: CheckpointManager | None) -> None:
    """Before a checkpoint or the final evaluation: refuse to save or score NaN/inf weights."""
    with torch.no_grad():
        if all(bool(torch.isfinite(p).all()) for p in params):
            return
    raise TrainingDiverged(
        f"the weights became NaN or infinite by step {step} (the run diverged); {_last_good(manager)}; "
        "lower the learning rate or aux_lambda"
    )


#: File name of the dynamics log in a run directory (the authors' column layout, `mult_probe.dynamics`).
DYNAMICS_CSV = "dynamics.csv"


def _write_dynamics(history: list[dict[str, Any]], directory: Path) -> None:
    """Rewrite `directory/dynamics.csv` from the history (so a resumed run's file has each logged step once)."""
    from mult_probe.dynamics import log_from_history, write_dynamics_csv

    if any("dynamics" in entry for entry in history):
        write_dynamics_csv(log_from_history(history), directory / DYNAMICS_CSV)


def _global_label_count(
    config: TrainConfig, pairs: np.ndarray, remove: np.ndarray | None, device: torch.device
) -> float:
    """Label tokens of the global batch: fixed without CoT, all-reduced for icot (rows differ by their removals)."""
    import torch.distributed as dist

    n_answer = config.k + config.n_digits_b
    if remove is None:
        return float(config.batch_size * (n_answer + 3))  # <eos> #### c_0 .. c_{k+l-1} <eos> are the targets
    cot_len = cot_length(config.k, config.n_digits_b)
    local = np.sum(cot_len - np.minimum(remove, cot_len) + n_answer + 3)
    count = torch.tensor([float(local)], dtype=torch.float64, device=device)
    dist.all_reduce(count)
    return float(count.item())


def _all_reduce_parts(parts: dict[str, Any], batch_size: int, norm: tuple[float, float] | None) -> dict[str, Any]:
    """Global-batch `lm`, `aux` and `position_loss` for the logs, from each rank's sums."""
    import torch.distributed as dist

    assert norm is not None
    keys = ["lm_sum", *(["aux_sum"] if "aux_sum" in parts else [])]
    flat = torch.cat([torch.stack([parts[key].double() for key in keys]), parts["position_sum"].double()])
    dist.all_reduce(flat)
    out: dict[str, Any] = {"lm": flat[0] / norm[0], "position_loss": flat[len(keys) :] / batch_size}
    if "aux_sum" in parts:
        out["aux"] = flat[1] / norm[1]
    return out


def _rng_states(rank: int, world: int, device: torch.device) -> dict[str, Any]:
    """This run's dropout RNG state(s) for a checkpoint: rank 0's as `torch_rng`, every rank's in a list."""
    states = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    if world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, {key: value.cpu() for key, value in states.items()})
        states["rank_rng"] = gathered
    return states


def _set_rng_state(state: dict[str, Any], rank: int, world: int, device: torch.device) -> None:
    """Restore this rank's dropout RNG from a checkpoint (rank 0's when it was written by fewer ranks)."""
    mine = state
    if world > 1 and len(state.get("rank_rng", [])) == world:
        mine = state["rank_rng"][rank]
    torch.set_rng_state(mine["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in mine:
        torch.cuda.set_rng_state(mine["cuda_rng"], device)
