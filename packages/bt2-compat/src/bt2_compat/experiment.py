"""The whole class-split experiment: old model, independent new model, BCT, L2 and BT^2, then the compatibility table.

The small-scale protocol of spec 6.4: the old model is an MLP `in -> [128] -> 32` trained on the first
`old_classes` classes; the independent, BCT and L2 new models are MLPs `in -> [256, 256] -> 32` on all classes;
BT^2 uses the same trunk emitting `d_new + d_old` channels (d_new = d_old = 32, k = 8, C = 2, lambdas = (1, 10, 5)).
Each model gets its own init seed derived from the experiment seed. Retrieval is leave-one-out on the test split.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from bt2_compat.data import Dataset, check_old_classes, class_subset, load_dataset
from bt2_compat.evaluate import Compatibility, compatibility, embed
from bt2_compat.models import BT2Model, EmbeddingModel, ModelConfig, build_model
from bt2_compat.train import TrainConfig, train_model
from repro_core.config import checked_fields
from repro_core.errors import ConfigError
from repro_core.seeding import derive_seed

__all__ = ["NEW_METHODS", "ExperimentConfig", "ExperimentResult", "model_configs", "run_experiment"]

logger = logging.getLogger(__name__)

#: New-model methods compared with the old model ("independent" is always trained: BT^2 needs it as teacher).
NEW_METHODS = ("independent", "bct", "l2", "bt2")


@dataclass(frozen=True)
class ExperimentConfig:
    """One class-split experiment (JSON round-trip with `to_dict`/`from_dict`); presets `digits()`, `paper()`."""

    data: str = "digits"  #: "digits" or "synthetic[:<classes>]"
    old_classes: int = 5  #: the old model sees labels < old_classes
    seed: int = 0  #: experiment seed (init, data order; the synthetic task)
    methods: tuple[str, ...] = NEW_METHODS  #: new-model methods to train and evaluate
    old_hidden: tuple[int, ...] = (128,)  #: old MLP hidden widths
    new_hidden: tuple[int, ...] = (256, 256)  #: new MLPs' hidden widths
    embedding_dim: int = 32  #: old embedding dim = new embedding dim = BT^2's d_new and d_old
    extra_dims: int = 8  #: BT^2's k
    scale_c: float = 2.0  #: BT^2's C
    metric: str = "cosine"  #: retrieval similarity
    train: TrainConfig = field(default_factory=TrainConfig)  #: shared optimisation settings

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "old_hidden", tuple(self.old_hidden))
        object.__setattr__(self, "new_hidden", tuple(self.new_hidden))
        if isinstance(self.train, dict):
            object.__setattr__(self, "train", TrainConfig.from_dict(self.train))
        for method in self.methods:
            if method not in NEW_METHODS:
                raise ConfigError(f"methods: expected names from {NEW_METHODS}, got {method!r}")
        if isinstance(self.old_classes, bool) or not isinstance(self.old_classes, int) or self.old_classes < 2:
            raise ConfigError(f"old_classes: expected an integer >= 2 (below the classes), got {self.old_classes!r}")

    @classmethod
    def digits(cls, seed: int = 0) -> ExperimentConfig:
        """Spec 6.4's digits preset (5 -> 10 classes, 60 epochs, C = 2, lambdas = (1, 10, 5))."""
        return cls(seed=seed)

    @classmethod
    def paper(cls, seed: int = 0) -> ExperimentConfig:
        """The paper's loss settings (C = 2, lambdas = (1, 10, 5), BCT alpha = 10, influence logit scale 1)."""
        return cls(seed=seed, train=TrainConfig(bct_alpha=10.0, influence_scale=1.0))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train"] = self.train.to_dict()
        for key in ("methods", "old_hidden", "new_hidden"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        return cls(**checked_fields(cls, data, "experiment config"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class ExperimentResult:
    """The compatibility table (%) of one experiment, the criterion checks and the wall time."""

    config: ExperimentConfig
    table: Compatibility
    seconds: float
    models: dict[str, EmbeddingModel | BT2Model] = field(default_factory=dict, repr=False)

    def criteria(self) -> dict[str, dict[str, bool]]:
        """`{method: {metric: M(method/old) > M(old/old)}}` for each trained method."""
        return {
            m: {k: self.table.criterion(m, "old", k) for k in ("top1", "top5", "mAP")}
            for m in self.config.methods
            if f"{m}/old" in self.table.cells
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "cells": self.table.cells,
            "criteria": self.criteria(),
            "seconds": self.seconds,
        }


def model_configs(config: ExperimentConfig, dataset: Dataset) -> dict[str, ModelConfig]:
    """The architecture of the old model and of each new method's model."""
    common = {
        "in_features": dataset.in_features,
        "num_classes": dataset.num_classes,
        "embedding_dim": config.embedding_dim,
    }
    configs = {"old": ModelConfig(hidden=config.old_hidden, **common)}
    for method in config.methods:
        kind = "bt2" if method == "bt2" else "embedding"
        configs[method] = ModelConfig(
            kind=kind,
            hidden=config.new_hidden,
            old_dim=config.embedding_dim,
            extra_dims=config.extra_dims,
            scale_c=config.scale_c,
            **common,
        )
    return configs


def run_experiment(
    config: ExperimentConfig,
    *,
    dataset: Dataset | None = None,
    show_progress: bool = False,
    device: torch.device | str = "cpu",
) -> ExperimentResult:
    """Train the old model and every new method, then evaluate old/old, new/old and new/new retrieval.

    `device`: where to train and embed (results come back to the CPU); the CLI picks it with `pick_device`.
    """
    start = time.perf_counter()
    data = dataset if dataset is not None else load_dataset(config.data, seed=config.seed)
    check_old_classes(config.old_classes, data.num_classes, data=data.name)
    archs = model_configs(config, data)
    methods = list(config.methods)
    if "bt2" in methods and "independent" not in methods:
        methods.insert(0, "independent")  # BT^2's new' teacher
    models: dict[str, EmbeddingModel | BT2Model] = {}
    x_old, y_old = class_subset(data.x_train, data.y_train, config.old_classes)
    old = build_model(archs["old"], derive_seed(config.seed, "old"))
    models["old"] = train_model(
        old,
        x_old,
        y_old,
        replace(config.train, method="independent", seed=derive_seed(config.seed, "old")),
        device=device,
        show_progress=show_progress,
        desc="old",
    ).model
    for method in methods:
        arch = archs.get(method) or model_configs(replace(config, methods=(method,)), data)[method]
        model = build_model(arch, derive_seed(config.seed, method))
        train_cfg = replace(config.train, method=method, seed=derive_seed(config.seed, method))
        models[method] = train_model(
            model,
            data.x_train,
            data.y_train,
            train_cfg,
            old_model=models["old"],
            new_prime_model=models.get("independent"),
            num_classes=data.num_classes,
            device=device,
            show_progress=show_progress,
            desc=method,
        ).model
    embeddings = {
        name: embed(model, data.x_test, device=device, show_progress=show_progress) for name, model in models.items()
    }
    pairs = [("old", "old")]
    for method in methods:
        pairs += [(method, "old"), (method, method)]
    table = compatibility(embeddings, data.y_test, pairs, metric=config.metric, show_progress=show_progress)
    seconds = time.perf_counter() - start
    logger.info("experiment %s seed %d: %.1f s", config.data, config.seed, seconds)
    return ExperimentResult(config, table, seconds, models)
