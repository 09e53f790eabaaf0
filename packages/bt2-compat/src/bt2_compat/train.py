"""Seeded, resumable training of the old model, the independent new model, BCT, L2 and BT^2.

`train_model(model, x, y, config, old_model=..., new_prime_model=...)` runs one method (`TrainConfig.method`):

- "independent": classification only (also how the old model is trained, on its class subset);
- "bct": classification + `bct_alpha` x BCT influence loss with the synthesised old classifier (old-model class
  means over the new training set, BT-2's `pseudo_classifier`);
- "l2": classification + `l2_weight` x `||phi_new(x)[:d_old] - phi_old(x)||^2`;
- "bt2": BT^2's stage 2 on a `BT2Model`, with the old model and an independently trained new model as frozen
  teachers (its stage 1 is training those two with "independent").

Teacher features are computed once, in eval mode, from the (un-augmented) training inputs and indexed by sample,
not cached from randomly augmented images as the released code does (spec 2.4). Training works on sample indices:
each step draws a batch of indices and gathers `(x[idx], y[idx], teacher[idx])`, the `(index, image, label)` form
of spec 3. With `augment=True` (images `[n, C, H, W]` only) each batch is randomly cropped (zero padding
`crop_padding`) and flipped on the fly (`bt2_compat.augment`), with draws from a generator seeded per epoch.

Determinism: the initial weights come from `build_model(config, seed)`; the data order of epoch e is drawn from
`derive_seed(seed, "shuffle", e)` and its augmentation draws from `derive_seed(seed, "augment", e)`; the LR is a
pure function of the step. So a run resumed from a checkpoint (`run_dir`, saved atomically through
`repro_core.checkpoint.CheckpointManager`) ends with the same weights, bit for bit on CPU, as an uninterrupted one.

Data parallel (`torchrun`, `repro_core.distributed.init_from_env`): when a process group with more than one rank is
running, every rank draws the same shuffled order, takes its share `batch[rank::world_size]` of each global batch,
scales its mean loss by `local / global` batch size and the gradients are summed with one all-reduce, so each
step applies the gradient of the whole global batch, as a single process would (up to float summation order).
Rank 0's initial weights are broadcast first; BatchNorm buffers are broadcast from rank 0 after each epoch;
checkpoints are written by rank 0 only (`repro_core.distributed.write_on_main`). Augmentation draws are made for
the whole global batch on every rank and each rank keeps its share, so they match a single process too.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bt2_compat.augment import apply_augmentation, draw_augmentation
from bt2_compat.losses import bct_influence, bt2_loss, classification_loss, l2_regression, pseudo_classifier
from bt2_compat.models import BT2Model, EmbeddingModel
from repro_core.checkpoint import CheckpointManager
from repro_core.config import checked_fields
from repro_core.distributed import all_reduce_gradients, data_parallel_group, write_on_main
from repro_core.errors import ConfigError
from repro_core.progress import progress
from repro_core.seeding import torch_generator

__all__ = ["METHODS", "SCHEDULES", "TrainConfig", "TrainResult", "teacher_embeddings", "train_model"]

logger = logging.getLogger(__name__)

#: Training methods selectable by name.
METHODS = ("independent", "bct", "l2", "bt2")
#: Learning-rate schedules: cosine with linear warm-up (the paper's backbones and BT^2), or constant (BT-2's BCT).
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loss settings of one training run (JSON round-trip with `to_dict`/`from_dict`)."""

    method: str = "independent"  #: one of METHODS
    epochs: int = 60  #: passes over the training set
    batch_size: int = 64  #: minibatch size
    lr: float = 1e-3  #: Adam learning rate
    weight_decay: float = 3e-5  #: Adam weight decay (the paper: 2^-15)
    schedule: str = "cosine"  #: one of SCHEDULES
    warmup_epochs: int = 0  #: linear warm-up epochs of the cosine schedule (the paper: 5 of 100)
    label_smoothing: float = 0.1  #: of the classification CE ("independent", "bct", "l2")
    bct_alpha: float = 1.0  #: weight of the BCT influence loss (the paper's CIFAR config: 10)
    l2_weight: float = 10.0  #: weight of the L2 regression loss
    #: BT^2 weights: lambda1 (new' match), lambda2 (influence), lambda3 (old match)
    lambdas: tuple[float, float, float] = (1.0, 10.0, 5.0)
    influence_scale: float = 16.0  #: logit scale of the influence CE (BCT and BT^2); BT-2 effectively uses 1
    seed: int = 0  #: data-order seed (model init has its own seed in `build_model`)
    checkpoint_every: int = 1  #: epochs between checkpoints when `run_dir` is given
    augment: bool = False  #: random crop + horizontal flip of image batches (CIFAR recipe; off for digits/MLP)
    crop_padding: int = 4  #: zero padding of the random crop (0: flip only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", tuple(float(v) for v in self.lambdas))
        if self.method not in METHODS:
            raise ConfigError(f"method: expected one of {METHODS}, got {self.method!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("epochs", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
        if (
            isinstance(self.warmup_epochs, bool)
            or not isinstance(self.warmup_epochs, int)
            or not (0 <= self.warmup_epochs < self.epochs)
        ):
            raise ConfigError(f"warmup_epochs: expected an integer in [0, epochs), got {self.warmup_epochs!r}")
        if len(self.lambdas) != 3:
            raise ConfigError(f"lambdas: expected three values (lambda1, lambda2, lambda3), got {self.lambdas!r}")
        # finite too: an infinite rate or weight turns the first step's weights into NaN, silently
        for name in ("lr", "influence_scale"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name}: expected a finite number > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "bct_alpha", "l2_weight"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"{name}: expected a finite number >= 0, got {getattr(self, name)!r}")
        if any(not 0 <= v < math.inf for v in self.lambdas):
            raise ConfigError(f"lambdas: expected finite values >= 0, got {self.lambdas!r}")
        if not isinstance(self.augment, bool):
            raise ConfigError(f"augment: expected true or false, got {self.augment!r}")
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ConfigError(f"crop_padding: expected an integer >= 0, got {self.crop_padding!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing: expected a value in [0, 1), got {self.label_smoothing!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lambdas"] = list(self.lambdas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**checked_fields(cls, data, "train config"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


@dataclass
class TrainResult:
    """What `train_model` returns: the trained model (in eval mode) and the mean loss of every epoch."""

    model: EmbeddingModel | BT2Model
    losses: list[float]
    resumed_from: int | None = None  #: the epoch a checkpoint resumed from, if any


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base LR at optimizer step `step` (0-based) of `total`."""
    if schedule == "constant":
        return 1.0
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def teacher_embeddings(model: EmbeddingModel | BT2Model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """`[n, dim]` embeddings of a frozen teacher (eval mode, no grad); the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model.embed(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def _as_tensor(x: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(device=device, dtype=dtype)


def train_model(
    model: EmbeddingModel | BT2Model,
    x: Any,
    y: Any,
    config: TrainConfig,
    *,
    old_model: EmbeddingModel | BT2Model | None = None,
    new_prime_model: EmbeddingModel | BT2Model | None = None,
    num_classes: int | None = None,
    run_dir: str | Path | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
    device: torch.device | str = "cpu",
    show_progress: bool = False,
    desc: str | None = None,
    distributed: bool | None = None,
) -> TrainResult:
    """Train `model` in place on `x: [n, ...]`, `y: [n]` with `config.method`; return it with the loss history.

    Args:
        old_model: frozen old model (required by "bct", "l2", "bt2").
        new_prime_model: frozen independently trained new model (required by "bt2").
        num_classes: rows of the pseudo-classifier (default: `max(y) + 1`).
        run_dir: folder for per-epoch checkpoints; a run finding checkpoints there resumes from the latest.
        on_epoch_end: called as `on_epoch_end(epoch, mean_loss)` after each epoch (and its checkpoint).
        device: where to train; teachers are moved there too.
        show_progress: a progress bar over epochs on stderr (`repro_core.progress`).
        distributed: data-parallel over the running process group (module docstring); None: whenever one with
            more than one rank is initialised.
    """
    device = torch.device(device)
    method = config.method
    if method in ("bct", "l2", "bt2") and old_model is None:
        raise ConfigError(f"method {method!r} needs the old model (old_model)")
    if method == "bt2":
        if new_prime_model is None:
            raise ConfigError("method 'bt2' needs the independently trained new model (new_prime_model)")
        if not isinstance(model, BT2Model):
            raise ConfigError("method 'bt2' trains a BT2Model (ModelConfig(kind='bt2'))")
    elif isinstance(model, BT2Model):
        raise ConfigError(f"method {method!r} trains an EmbeddingModel, not a BT2Model")
    xt = _as_tensor(x, torch.float32, device)
    yt = _as_tensor(y, torch.int64, device)
    if xt.shape[0] != yt.shape[0] or yt.ndim != 1:
        raise ConfigError(f"x/y: {xt.shape[0]} inputs but labels of shape {tuple(yt.shape)}")
    n = xt.shape[0]
    if n == 0:
        raise ConfigError("x: empty training set")
    if config.augment and xt.ndim != 4:
        raise ConfigError(f"augment: needs images [n, C, H, W], got inputs of shape {tuple(xt.shape)}")
    n_cls = int(yt.max()) + 1 if num_classes is None else num_classes
    model.to(device)
    rank, world = data_parallel_group(distributed)
    if world > 1:
        _broadcast_from_main(model, buffers_only=False)

    old_feats = new_feats = classifier = None
    if old_model is not None and method != "independent":
        old_model.to(device)
        old_feats = teacher_embeddings(old_model, xt)
        classifier = pseudo_classifier(old_feats, yt, n_cls)
        if old_feats.shape[1] > model.embedding_dim:
            raise ConfigError(f"old model dim {old_feats.shape[1]} exceeds the new embedding dim {model.embedding_dim}")
    if method == "bt2":
        assert new_prime_model is not None and isinstance(model, BT2Model)
        new_prime_model.to(device)
        new_feats = teacher_embeddings(new_prime_model, xt)
        if new_feats.shape[1] != model.head.d_new:
            raise ConfigError(f"new' teacher dim {new_feats.shape[1]} != the BT^2 head's d_new {model.head.d_new}")
        if old_feats is not None and old_feats.shape[1] != model.head.d_old:
            raise ConfigError(f"old model dim {old_feats.shape[1]} != the BT^2 head's d_old {model.head.d_old}")

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = steps_per_epoch * config.warmup_epochs

    manager = CheckpointManager(run_dir, prefix="epoch", keep=2) if run_dir is not None else None
    losses: list[float] = []
    start_epoch = 0
    resumed_from: int | None = None
    if manager is not None:
        state = manager.load_latest()
        if state is not None:
            if _stored_config(state.get("train_config")) != config:  # fields added later take their defaults
                raise ConfigError(f"run_dir {run_dir}: its checkpoints were made with a different training config")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            losses = [float(v) for v in state["losses"]]
            start_epoch = int(state["epoch"]) + 1
            resumed_from = int(state["epoch"])
            logger.info("resuming from %s (epoch %d)", manager.latest(), resumed_from)

    model.train()
    epochs = range(start_epoch, config.epochs)
    for epoch in progress(epochs, desc=desc or method, unit="epoch", disable=None if show_progress else True):
        order = torch.randperm(n, generator=torch_generator(config.seed, "bt2-compat", "shuffle", epoch))
        order = order.to(device)
        augment_gen = torch_generator(config.seed, "bt2-compat", "augment", epoch) if config.augment else None
        total, count = 0.0, 0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(step, total_steps, warmup_steps, config.schedule)
            batch = order[i * config.batch_size : (i + 1) * config.batch_size]
            idx = batch[rank::world]
            params = None
            if augment_gen is not None:  # drawn for the global batch on every rank: same images as one process
                params = draw_augmentation(len(batch), augment_gen, padding=config.crop_padding).select(
                    slice(rank, None, world)
                )
            optimizer.zero_grad(set_to_none=True)
            if len(idx) == 0:  # a global batch smaller than the world: this rank adds zero gradient
                all_reduce_gradients(p for p in model.parameters() if p.requires_grad)
                optimizer.step()
                continue
            xb, yb = xt[idx], yt[idx]
            if params is not None:
                xb = apply_augmentation(xb, params)
            out = model(xb)
            if method == "bt2":
                assert old_feats is not None and new_feats is not None and classifier is not None
                loss, _ = bt2_loss(
                    out,
                    yb,
                    old_feats[idx],
                    new_feats[idx],
                    classifier,  # type: ignore[arg-type]
                    config.lambdas,
                    config.influence_scale,
                )
            else:
                loss = classification_loss(out.logits, yb, config.label_smoothing)
                if method == "bct":
                    assert classifier is not None
                    loss = loss + config.bct_alpha * bct_influence(
                        out.embedding, yb, classifier, config.influence_scale, config.label_smoothing
                    )
                elif method == "l2":
                    assert old_feats is not None
                    loss = loss + config.l2_weight * l2_regression(out.embedding, old_feats[idx])
            if world > 1:
                (loss * (len(idx) / len(batch))).backward()
                all_reduce_gradients(p for p in model.parameters() if p.requires_grad)
            else:
                loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if world > 1:
            total, count = _all_reduce_sums(total, count)
            _broadcast_from_main(model, buffers_only=True)
        losses.append(total / count)
        if manager is not None and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs):
            save = manager.save if world == 1 else functools.partial(write_on_main, manager.save)
            save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "losses": list(losses),
                    "train_config": config.to_dict(),
                },
                epoch,
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch, losses[-1])
    model.eval()
    return TrainResult(model, losses, resumed_from)


def _stored_config(data: Any) -> TrainConfig | None:
    """The `TrainConfig` a checkpoint was made with (None if unreadable)."""
    try:
        return TrainConfig.from_dict(data)
    except (ConfigError, TypeError):
        return None


def _all_reduce_sums(*values: float) -> tuple[float, ...]:
    import torch.distributed as dist

    buffer = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(buffer)
    return tuple(float(v) for v in buffer)


def _broadcast_from_main(model: torch.nn.Module, *, buffers_only: bool) -> None:
    """Copy rank 0's buffers (and parameters unless `buffers_only`) to every rank."""
    import torch.distributed as dist

    tensors = list(model.buffers()) if buffers_only else [*model.parameters(), *model.buffers()]
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)
