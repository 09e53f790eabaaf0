"""Shared plumbing for the analyses: teacher-forced batches, token roles, cached activations, checkpoint loading.

Every analysis feeds the full teacher-forced no-CoT sequence `a * b <eos> <eos> #### c_0 .. c_{K-1} <eos>` (K = k+l);
with a causal model, the logits at `predict_positions[t]` equal those of the paper's prompt
`input <eos><eos> #### c_0 .. c_{t-1}` (spec 2.4), so one forward pass serves every answer step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mult_probe.data import ANSWER_MARK, EOS, CharTokenizer
from mult_probe.model import Transformer
from repro_core.errors import ConfigError, InputError

__all__ = ["LoadedRun", "check_pairs", "collect", "digit_token_ids", "load_run", "token_roles"]


def token_roles(k: int, l: int | None = None) -> list[str]:
    """Role label of every position of the no-CoT layout: `a0..a{k-1} * b0..b{l-1} eos eos #### c0..c{K-1} eos`."""
    l = k if l is None else l
    return [
        *(f"a{i}" for i in range(k)),
        "*",
        *(f"b{j}" for j in range(l)),
        EOS,
        EOS,
        ANSWER_MARK,
        *(f"c{t}" for t in range(k + l)),
        EOS,
    ]


def digit_token_ids(tokenizer: CharTokenizer | None = None) -> list[int]:
    """Token ids of the digits 0..9 (rows of W_E / columns of W_U that the Fourier analysis reads)."""
    tok = tokenizer or CharTokenizer()
    return [tok.vocab[str(d)] for d in range(10)]


def check_pairs(pairs: Any, k: int, l: int) -> np.ndarray:
    """`[n, 2]` int64 operand pairs with exactly k and l digits; bad input raises `InputError` naming `pairs`."""
    arr = np.asarray(pairs, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise InputError(f"must be a non-empty [n, 2] array of operand pairs, got shape {arr.shape}", field="pairs")
    if (arr[:, 0] < 10 ** (k - 1)).any() or (arr[:, 0] >= 10**k).any():
        raise InputError(f"first operands must have exactly {k} digits", field="pairs")
    if (arr[:, 1] < 10 ** (l - 1)).any() or (arr[:, 1] >= 10**l).any():
        raise InputError(f"second operands must have exactly {l} digits", field="pairs")
    return arr


@torch.no_grad()
def collect(
    model: Transformer,
    tokens: np.ndarray,
    names: Sequence[str],
    *,
    batch_size: int = 500,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and cached activations of `tokens` (`[n, T]`), batched, in eval mode, on the CPU.

    Returns:
        (`[n, T, d_vocab]` float32 logits, {hook name: activation concatenated over the batches}).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
    unknown = [n for n in names if n not in model.hook_dict]
    if unknown:
        raise ConfigError(f"hooks: no hook point named {unknown[0]!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, acts = [], {n: [] for n in names}
    try:
        for start in range(0, len(tokens), batch_size):
            ids = torch.as_tensor(tokens[start : start + batch_size], device=device)
            out, cache = model.run_with_cache(ids, names_filter=list(names))
            logits.append(out.float().cpu())
            for n in names:
                acts[n].append(cache[n].float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(logits), {n: torch.cat(v) for n, v in acts.items()}


@dataclass
class LoadedRun:
    """A model restored from a `mult-probe train --run-dir` checkpoint, with the run's digit counts."""

    model: Transformer
    config: Any  #: the run's `mult_probe.train.TrainConfig`
    k: int
    l: int
    step: int
    path: Path


def load_run(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LoadedRun:
    """Load the latest checkpoint of a run directory, or one `ckpt-<step>.pt` file.

    Bad paths and files raise `InputError` naming the path (the CLI turns it into exit code 2).
    """
    from mult_probe.train import TrainConfig
    from repro_core.checkpoint import CheckpointManager, load_checkpoint

    path = Path(path)
    if path.is_dir():
        latest = CheckpointManager(path, keep=None).latest()
        if latest is None:
            raise InputError("no checkpoint found (run `mult-probe train --run-dir` first)", path=path)
        file = latest
    elif path.is_file():
        file = path
    else:
        raise InputError(
            "checkpoint not found (expected a `mult-probe train --run-dir` directory or a .pt file)", path=path
        )
    state = load_checkpoint(file)
    missing = [key for key in ("config", "model", "step") if key not in state]
    if missing:
        raise InputError(f"not a mult-probe checkpoint (missing {', '.join(missing)})", path=file)
    try:
        config = TrainConfig.from_json(state["config"])
        model = Transformer(config.model)
        model.load_state_dict(state["model"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InputError(f"cannot restore the model ({type(exc).__name__}: {exc})", path=file) from exc
    model.to(device).eval()
    return LoadedRun(model=model, config=config, k=config.k, l=config.n_digits_b, step=int(state["step"]), path=file)
