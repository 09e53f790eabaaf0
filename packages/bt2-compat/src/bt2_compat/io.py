"""Saving and loading trained models as plain, safely loadable checkpoints.

A model file is a dict written atomically by `repro_core.checkpoint.save_checkpoint` and read back with
`weights_only=True` (no arbitrary unpickling): the architecture (`ModelConfig` as a dict), the state_dict (with
the orthogonal parametrizations' `original` and `base` tensors), and JSON-ready metadata (method, data, classes).
No TorchScript: parametrized modules cannot be scripted (spec 7.1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bt2_compat.models import BT2Model, EmbeddingModel, ModelConfig, build_model
from repro_core.checkpoint import load_checkpoint, save_checkpoint
from repro_core.errors import InputError

__all__ = ["FORMAT", "load_model", "save_model"]

#: Marker of a bt2-compat model file.
FORMAT = "bt2-compat-model/1"


def save_model(
    path: str | os.PathLike[str],
    model: EmbeddingModel | BT2Model,
    config: ModelConfig,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (architecture `config`) and `meta` to `path` atomically; return the path."""
    state = {
        "format": FORMAT,
        "model_config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    return save_checkpoint(state, path)


def load_model(path: str | os.PathLike[str]) -> tuple[EmbeddingModel | BT2Model, ModelConfig, dict[str, Any]]:
    """`(model in eval mode, its ModelConfig, meta)` from a file written by `save_model`; bad files raise InputError."""
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
