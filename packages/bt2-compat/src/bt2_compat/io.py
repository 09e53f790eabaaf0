"""Saving and loading trained models as plain, safely loadable checkpoints.

A model file is a dict written atomically by `repro_core.checkpoint.save_checkpoint` and read back with
`weights_only=True` (no arbitrary unpickling): the architecture (`ModelConfig` as a dict), the state_dict (with
the orthogonal parametrizations' `original` and `base` tensors), and JSON-ready metadata (method, data, classes).
No TorchScript: parametrized modules cannot be scripted (spec 7.1).

`meta["dataset"]` records the training data's identity (`Dataset.identity()`: name, class count and a SHA-256
fingerprint of its arrays) when `save_model` is given the `dataset`. `check_model_data` refuses to combine a model
with data it cannot take (input size) or was not trained on (fingerprint, class count); files written before the
field existed load as "unknown data set", with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from bt2_compat.data import Dataset
from bt2_compat.models import BT2Model, EmbeddingModel, ModelConfig, build_model
from repro_core.checkpoint import load_checkpoint, save_checkpoint
from repro_core.errors import InputError

__all__ = ["FORMAT", "check_model_data", "load_model", "save_model"]

logger = logging.getLogger(__name__)

#: Marker of a bt2-compat model file.
FORMAT = "bt2-compat-model/1"


def save_model(
    path: str | os.PathLike[str],
    model: EmbeddingModel | BT2Model,
    config: ModelConfig,
    meta: dict[str, Any] | None = None,
    *,
    dataset: Dataset | None = None,
) -> Path:
    """Write `model` (architecture `config`) and `meta` to `path` atomically; return the path.

    `dataset`: the data the model was trained on; its identity is stored as `meta["dataset"]`.
    """
    meta = dict(meta or {})
    if dataset is not None:
        meta["dataset"] = dataset.identity()
    state = {
        "format": FORMAT,
        "model_config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    return save_checkpoint(state, path)


def load_model(path: str | os.PathLike[str]) -> tuple[EmbeddingModel | BT2Model, ModelConfig, dict[str, Any]]:
    """`(model in eval mode, its ModelConfig, meta)` from a file written by `save_model`; bad files raise InputError."""
    _check_torch_file(path)
    state = load_checkpoint(path)
    if state.get("format") != FORMAT:
        raise InputError(
            f"not a bt2-compat model file (format {state.get('format')!r}, expected {FORMAT!r})",
            path=path,
            field="format",
        )
    try:
        config = ModelConfig.from_dict(state["model_config"])
        model = build_model(config)
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"cannot rebuild the model: {str(exc).splitlines()[0]}", path=path) from exc
    model.eval()
    return model, config, dict(state.get("meta", {}))


#: How a file written by `torch.save` starts: a zip archive (torch >= 1.6) or a pickle (the legacy format).
_TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")


def _check_torch_file(path: str | os.PathLike[str]) -> None:
    """Refuse a foreign file in one line, naming what it starts with, before torch reads it.

    Empty files and torch's own failures are `repro_core.checkpoint.load_checkpoint`'s to report.
    """
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except IsADirectoryError:
        raise InputError("a directory, not a model file", path=path) from None
    if start and not start.startswith(_TORCH_FILE_STARTS):
        raise InputError(
            f"not a bt2-compat model file (starts with {start!r}; a torch.save file is a zip archive)", path=path
        )


def _input_shape(data: Dataset) -> str:
    shape = data.x_train.shape[1:]
    return "x".join(str(n) for n in shape) + (f" = {data.in_features} features" if len(shape) > 1 else " features")


def check_model_data(
    path: str | os.PathLike[str], config: ModelConfig, meta: dict[str, Any], data: Dataset, *, role: str = "model"
) -> None:
    """Refuse (`InputError` naming `path`) to use a model with data it cannot take or was not trained on.

    Checks, before any work: the model's input size against `data`'s inputs (MLP: flattened width; ResNet: image
    channels), its classifier's class count, and the stored data-set identity (`meta["dataset"]`) against
    `data.fingerprint`. A file without the identity (written before it was recorded) only logs a warning, as does
    generated data of the same name and seed whose values differ in the last bits (another numpy build or CPU).
    `role` names the model in the message (e.g. "--query").
    """
    sample = data.x_train.shape[1:]
    if config.backbone == "mlp":
        if config.in_features != data.in_features:
            raise InputError(
                f"{role} model takes inputs of {config.in_features} features, but data {data.name} has inputs of "
                f"{_input_shape(data)}",
                path=path,
                field="in_features",
            )
    elif len(sample) != 3 or sample[0] != config.in_channels:
        got = f"images of {sample[0]} channels" if len(sample) == 3 else f"vectors of {_input_shape(data)}"
        raise InputError(
            f"{role} model ({config.backbone}) takes images of {config.in_channels} channels, but data {data.name} "
            f"has {got}",
            path=path,
            field="in_channels",
        )
    stored = meta.get("dataset")
    if not isinstance(stored, dict) or "fingerprint" not in stored:
        if config.num_classes != data.num_classes:
            raise InputError(
                f"{role} model was trained on {config.num_classes}-class data, but data {data.name} has "
                f"{data.num_classes} classes",
                path=path,
                field="num_classes",
            )
        logger.warning(
            "%s: %s model file records no data-set identity (written by an older bt2-compat): cannot check that it "
            "was trained on %s",
            path,
            role,
            data.name,
        )
        return
    if stored["fingerprint"] != data.fingerprint:
        if data.seed is not None and stored.get("seed") == data.seed and stored.get("name") == data.name:
            logger.warning(
                "%s: %s model was trained on %s with seed %d, but regenerating it here gives other values "
                "(another numpy build or CPU?); going on",
                path,
                role,
                data.name,
                data.seed,
            )
            return
        raise InputError(
            f"{role} model was trained on data set {stored.get('name')!r} ({stored.get('num_classes')} classes, "
            f"fingerprint {str(stored['fingerprint'])[:12]}), not on {data.name!r} ({data.num_classes} classes, "
            f"fingerprint {data.fingerprint[:12]}); models and data must come from the same data set",
            path=path,
            field="dataset",
        )
