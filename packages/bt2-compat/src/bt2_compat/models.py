"""Backbones, the plain embedding model, and the BT^2 head and model.

Every model maps a batch to a NamedTuple whose `embedding` is what retrieval compares and whose `logits` feed the
classification loss; `embed(x)` returns the embedding alone. Backbones are written here (torchvision is not a
dependency): `MLP` for vectors (digits, tabular data), `ResNet18Cifar` and `ResNet50Cifar` (3x3 stem, no
max-pool; basic / bottleneck blocks) for 32x32 images.

`BT2Head` is the released `ResNet_ortho` head (spec 2.3) on top of any backbone that emits `d_new + d_old`
features `b`:

    g     = normalize(fc3(relu(b)))          old branch, [batch, d_old]
    f     = normalize(b[:, :d_new])          new' branch, matched to an independent new model
    a     = normalize(g[:, :k])              the k "extra" old-branch dimensions
    z     = [a ; P(C f)]                     [batch, k + d_new], P orthonormal (d_new x d_new)
    h     = O(z[:, :d_old])                  compatible block, O orthonormal (d_old x d_old)
    phi   = [h ; z[:, d_old:]]               final embedding, [batch, d_new + k]
    logits = logit_scale * fc_out(f)

so `phi = blockdiag(O, I) z` and `<phi_i, phi_j> = <a_i, a_j> + C^2 <f_i, f_j>`: the new' geometry survives
intact, and every embedding has norm `sqrt(1 + C^2)` (`C` when `k = 0`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bt2_compat.transform import INITS, MAPS, BasisTransform
from repro_core.config import checked_fields
from repro_core.errors import ConfigError
from repro_core.seeding import derive_seed, fork_rng

__all__ = [
    "BACKBONES",
    "KINDS",
    "MLP",
    "BT2Head",
    "BT2Model",
    "BT2Output",
    "EmbeddingModel",
    "EmbeddingOutput",
    "ModelConfig",
    "ResNet18Cifar",
    "ResNet50Cifar",
    "build_model",
]

#: Backbone names of `ModelConfig.backbone`.
BACKBONES = ("mlp", "resnet18", "resnet50")
#: Model kinds of `ModelConfig.kind`: a plain embedding model (old, independent, BCT, L2) or a BT^2 model.
KINDS = ("embedding", "bt2")


class MLP(nn.Module):
    """`[batch, in_features] -> [batch, out_features]`: Linear+ReLU hidden layers, a Linear, optionally a ReLU.

    `last_nonlin=True` mirrors ml-fct/BT-2's backbones, whose features pass a ReLU before pooling.
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int, last_nonlin: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, out_features))
        if last_nonlin:
            layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and an identity or 1x1 shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """CIFAR-style ResNet-18: `[batch, C, H, W] -> [batch, out_features]`.

    3x3 stride-1 stem and no max-pool (for 32x32 inputs), four stages of two basic blocks (widths `width * (1, 2,
    4, 8)`), global average pooling, then a 1x1 projection to `out_features` (as ml-fct's embedding layer) and an
    optional final ReLU.
    """

    def __init__(self, in_channels: int, out_features: int, width: int = 64, last_nonlin: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        planes_in = width
        for stage, mult in enumerate((1, 2, 4, 8)):
            for i in range(2):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_BasicBlock(planes_in, width * mult, stride))
                planes_in = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Conv2d(planes_in, out_features, 1)
        self.last_nonlin = last_nonlin
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = self.proj(F.adaptive_avg_pool2d(out, 1)).flatten(1)
        return F.relu(out) if self.last_nonlin else out


class _Bottleneck(nn.Module):
    """ResNet bottleneck block: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand to `4 * planes`, with a shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        out_planes = self.expansion * planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet50Cifar(nn.Module):
    """CIFAR-style ResNet-50: `[batch, C, H, W] -> [batch, out_features]`.

    As `ResNet18Cifar` (3x3 stride-1 stem, no max-pool, global average pooling, 1x1 projection, optional final
    ReLU) with four stages of (3, 4, 6, 3) bottleneck blocks of widths `width * (1, 2, 4, 8)`, expanded 4x (2048
    channels before the projection at `width = 64`).
    """

    def __init__(self, in_channels: int, out_features: int, width: int = 64, last_nonlin: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        planes_in = width
        for stage, (mult, depth) in enumerate(zip((1, 2, 4, 8), (3, 4, 6, 3), strict=True)):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_Bottleneck(planes_in, width * mult, stride))
                planes_in = width * mult * _Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Conv2d(planes_in, out_features, 1)
        self.last_nonlin = last_nonlin
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = self.proj(F.adaptive_avg_pool2d(out, 1)).flatten(1)
        return F.relu(out) if self.last_nonlin else out


class EmbeddingOutput(NamedTuple):
    """Output of `EmbeddingModel`: `logits: [batch, num_classes]`, `embedding: [batch, dim]` (unit norm)."""

    logits: torch.Tensor
    embedding: torch.Tensor


class BT2Output(NamedTuple):
    """Output of `BT2Head`/`BT2Model` (all `[batch, .]`).

    logits: `[batch, num_classes]` from the new' branch. compat: h, `[batch, d_old]`, the backward-compatible
    block (= `embedding[:, :d_old]`). new_prime: f, `[batch, d_new]`, unit norm. embedding: phi, `[batch,
    d_new + k]`, norm `sqrt(1 + C^2)`. old_branch: a, `[batch, k]`, unit norm (empty when k = 0).
    """

    logits: torch.Tensor
    compat: torch.Tensor
    new_prime: torch.Tensor
    embedding: torch.Tensor
    old_branch: torch.Tensor


class EmbeddingModel(nn.Module):
    """Backbone + L2-normalised embedding + a bias-free classifier on it (logits scaled by `logit_scale`).

    The old model, the independent new model, BCT and L2 all use this; `embed(x)` is the retrieval feature.
    """

    def __init__(self, backbone: nn.Module, embedding_dim: int, num_classes: int, logit_scale: float = 16.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(embedding_dim, num_classes, bias=False)
        self.embedding_dim = embedding_dim
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> EmbeddingOutput:
        emb = F.normalize(self.backbone(x), dim=1)
        return EmbeddingOutput(self.logit_scale * self.fc(emb), emb)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """`x -> [batch, embedding_dim]` unit-norm embedding."""
        return self.forward(x).embedding


class BT2Head(nn.Module):
    """The BT^2 head (module docstring), on `b: [batch, in_features]` with `in_features >= d_new`.

    Args:
        in_features: backbone output width (the paper: `d_new + d_old`).
        d_new: new' dimension d; d_old: old embedding dimension d_o; extra_dims: k, the old-branch dims added.
        scale_c: the constant C weighting the new' branch.
        num_classes: outputs of the classifier on f; logit_scale: multiplies its logits.
        orthogonal_map, bt_init: passed to both `BasisTransform`s (P: d_new, O: d_old).
    Requires `0 <= k <= d_old <= d_new + k`.
    """

    def __init__(
        self,
        in_features: int,
        d_new: int,
        d_old: int,
        extra_dims: int,
        scale_c: float = 2.0,
        num_classes: int = 10,
        logit_scale: float = 16.0,
        orthogonal_map: str = "matrix_exp",
        bt_init: str = "random",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("d_new", d_new),
            ("d_old", d_old),
            ("num_classes", num_classes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
        if isinstance(extra_dims, bool) or not isinstance(extra_dims, int) or extra_dims < 0:
            raise ConfigError(f"extra_dims: expected an integer >= 0, got {extra_dims!r}")
        if not extra_dims <= d_old <= d_new + extra_dims:
            raise ConfigError(
                f"extra_dims/d_old: need 0 <= extra_dims ({extra_dims}) <= d_old ({d_old}) <= "
                f"d_new + extra_dims ({d_new + extra_dims})"
            )
        if in_features < d_new:
            raise ConfigError(f"in_features: {in_features} is smaller than d_new ({d_new})")
        if not 0 < scale_c < math.inf:  # an infinite C makes every embedding NaN after normalisation
            raise ConfigError(f"scale_c: expected a finite C > 0, got {scale_c!r}")
        self.d_new, self.d_old, self.extra_dims, self.scale_c = d_new, d_old, extra_dims, float(scale_c)
        self.logit_scale = float(logit_scale)
        self.fc3 = nn.Linear(in_features, d_old, bias=True)
        self.transform_new = BasisTransform(d_new, orthogonal_map, bt_init)  # P
        self.transform_old = BasisTransform(d_old, orthogonal_map, bt_init)  # O
        self.fc_out = nn.Linear(d_new, num_classes, bias=False)

    @property
    def embedding_dim(self) -> int:
        """`d_new + k`, the dimension of the final embedding."""
        return self.d_new + self.extra_dims

    def forward(self, b: torch.Tensor) -> BT2Output:
        g = F.normalize(self.fc3(F.relu(b)), dim=1)
        f = F.normalize(b[:, : self.d_new], dim=1)
        a = F.normalize(g[:, : self.extra_dims], dim=1)
        z = torch.cat([a, self.transform_new(self.scale_c * f)], dim=1)
        h = self.transform_old(z[:, : self.d_old])
        phi = torch.cat([h, z[:, self.d_old :]], dim=1)  # slice from d_old: also right when d_old = d_new + k
        return BT2Output(self.logit_scale * self.fc_out(f), h, f, phi, a)


class BT2Model(nn.Module):
    """Any backbone emitting `[batch, head.in_features]`, followed by a `BT2Head`."""

    def __init__(self, backbone: nn.Module, head: BT2Head) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def embedding_dim(self) -> int:
        return self.head.embedding_dim

    def forward(self, x: torch.Tensor) -> BT2Output:
        return self.head(self.backbone(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """`x -> [batch, d_new + k]`; its first `d_old` dims are the compatible block."""
        return self.forward(x).embedding


def _positive_int(value: Any, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model; JSON round-trip with `to_dict`/`from_dict` (stored in every checkpoint)."""

    kind: str = "embedding"  #: "embedding" (old/independent/BCT/L2) or "bt2"
    backbone: str = "mlp"  #: "mlp", "resnet18" or "resnet50"
    in_features: int = 64  #: MLP input width (flattened)
    hidden: tuple[int, ...] = (256, 256)  #: MLP hidden widths
    in_channels: int = 3  #: ResNet input channels
    width: int = 64  #: ResNet base width
    embedding_dim: int = 32  #: embedding d (kind="embedding") or new' dim d_new (kind="bt2")
    old_dim: int = 32  #: bt2: the old model's embedding dim d_old
    extra_dims: int = 8  #: bt2: k
    scale_c: float = 2.0  #: bt2: the constant C
    num_classes: int = 10  #: classifier outputs (all classes, also for the old model, as in the paper)
    logit_scale: float = 16.0  #: logits = logit_scale * fc(normalized feature)
    last_nonlin: bool = True  #: ReLU at the end of the backbone (ml-fct/BT-2's `last_nonlin=True`)
    orthogonal_map: str = "matrix_exp"  #: bt2: map of both basis transformations
    bt_init: str = field(default="random")  #: bt2: "random" (BT-2) or "identity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.kind not in KINDS:
            raise ConfigError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone: expected one of {BACKBONES}, got {self.backbone!r}")
        for name in ("in_features", "in_channels", "width", "embedding_dim", "old_dim", "num_classes"):
            _positive_int(getattr(self, name), name)
        _positive_int(self.extra_dims, "extra_dims", 0)
        for size in self.hidden:
            _positive_int(size, "hidden")
        if self.orthogonal_map not in MAPS:
            raise ConfigError(f"orthogonal_map: expected one of {MAPS}, got {self.orthogonal_map!r}")
        if self.bt_init not in INITS:
            raise ConfigError(f"bt_init: expected one of {INITS}, got {self.bt_init!r}")
        if not self.logit_scale > 0:
            raise ConfigError(f"logit_scale: expected > 0, got {self.logit_scale!r}")
        if self.kind == "bt2" and not self.extra_dims <= self.old_dim <= self.embedding_dim + self.extra_dims:
            bound = self.embedding_dim + self.extra_dims
            raise ConfigError(
                f"extra_dims/old_dim: need 0 <= extra_dims ({self.extra_dims}) <= old_dim "
                f"({self.old_dim}) <= embedding_dim + extra_dims ({bound})"
            )

    @property
    def output_dim(self) -> int:
        """Dimension of the model's retrieval embedding."""
        return self.embedding_dim + self.extra_dims if self.kind == "bt2" else self.embedding_dim

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        fields = checked_fields(cls, data, "model config")
        return cls(**{k: (tuple(v) if k == "hidden" else v) for k, v in fields.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


def build_model(config: ModelConfig, seed: int = 0) -> EmbeddingModel | BT2Model:
    """A freshly initialised model for `config`; weights depend only on `seed` (global RNG state is restored)."""
    width = config.embedding_dim + config.old_dim if config.kind == "bt2" else config.embedding_dim
    with fork_rng():
        torch.manual_seed(derive_seed(seed, "bt2-compat", "init"))
        backbone: nn.Module
        if config.backbone == "mlp":
            backbone = MLP(config.in_features, config.hidden, width, config.last_nonlin)
        elif config.backbone == "resnet18":
            backbone = ResNet18Cifar(config.in_channels, width, config.width, config.last_nonlin)
        else:
            backbone = ResNet50Cifar(config.in_channels, width, config.width, config.last_nonlin)
        if config.kind == "embedding":
            return EmbeddingModel(backbone, config.embedding_dim, config.num_classes, config.logit_scale)
        head = BT2Head(
            width,
            config.embedding_dim,
            config.old_dim,
            config.extra_dims,
            config.scale_c,
            config.num_classes,
            config.logit_scale,
            config.orthogonal_map,
            config.bt_init,
        )
        return BT2Model(backbone, head)
