"""Batch-wise image augmentation in torch: random crop with zero padding and random horizontal flip (spec 3).

The CIFAR recipe (torchvision's `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()`), applied to a whole
`[batch, C, H, W]` batch on the fly, on the batch's device, in one gather: each image is zero-padded by `padding`
on every side, cut at a random offset `(dy, dx)` in `[0, 2 * padding]^2` back to `H x W`, and mirrored left-right
with probability 1/2.

The random draws (offsets and flips) come from an explicit CPU `torch.Generator`, never the global RNG, and are
drawn for the whole batch at once, so the result depends only on the generator's seed: the same on CPU and CUDA,
in a resumed run (the training loop seeds one generator per epoch) and under data parallelism (every rank draws
the global batch's parameters and keeps its share, `AugmentParams.select`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from repro_core.errors import ConfigError

__all__ = ["AugmentParams", "apply_augmentation", "augment_batch", "draw_augmentation"]


class AugmentParams(NamedTuple):
    """Per-image draws: `dy, dx: [batch]` int64 crop offsets in `[0, 2 * padding]`, `flip: [batch]` bool."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor
    padding: int

    def select(self, index: torch.Tensor | slice) -> AugmentParams:
        """The draws of a subset of the batch (a rank's share `[rank::world]`)."""
        return AugmentParams(self.dy[index], self.dx[index], self.flip[index], self.padding)


def _check_padding(padding: int) -> None:
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"crop_padding: expected an integer >= 0, got {padding!r}")


def draw_augmentation(batch: int, generator: torch.Generator, *, padding: int = 4, flip: bool = True) -> AugmentParams:
    """Draw crop offsets and flips for `batch` images from `generator` (a CPU generator; always three draws)."""
    _check_padding(padding)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
        raise ConfigError(f"batch: expected an integer >= 0, got {batch!r}")
    dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    return AugmentParams(dy, dx, flips if flip else torch.zeros_like(flips), padding)


def apply_augmentation(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """`x: [batch, C, H, W]` -> the cropped (and flipped) `[batch, C, H, W]`, on `x`'s device and dtype.

    Output pixel `(i, j)` of image b is padded pixel `(dy_b + i, dx_b + j')` with `j' = W - 1 - j` when flipped
    and `j' = j` otherwise (crop, then flip, as torchvision's transform order).
    """
    if x.ndim != 4:
        raise ConfigError(f"x: expected images [batch, C, H, W], got shape {tuple(x.shape)}")
    if params.dy.shape[0] != x.shape[0]:
        raise ConfigError(f"params: drawn for {params.dy.shape[0]} images, the batch has {x.shape[0]}")
    batch, channels, height, width = x.shape
    if batch == 0:
        return x
    device = x.device
    pad = params.padding
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    rows = params.dy.to(device)[:, None] + torch.arange(height, device=device)  # [batch, H]
    cols = torch.arange(width, device=device).expand(batch, width)
    cols = torch.where(params.flip.to(device)[:, None], width - 1 - cols, cols) + params.dx.to(device)[:, None]
    b = torch.arange(batch, device=device)[:, None, None, None]
    c = torch.arange(channels, device=device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop (zero padding `padding`) and horizontal flip of `x: [batch, C, H, W]`, draws from `generator`."""
    return apply_augmentation(x, draw_augmentation(x.shape[0], generator, padding=padding, flip=flip))
