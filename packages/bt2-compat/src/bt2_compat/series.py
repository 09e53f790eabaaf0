"""Multi-step model series (old -> new -> newer) and the compatibility matrix of all pairs.

A retrieval system is upgraded more than once: model `t` is trained on the classes `< class_steps[t]` and must stay
compatible with model `t - 1` (and, transitively, with every earlier model whose gallery may still be in use).
Step 0 is trained independently; every later step uses `method` with the previous model as the old model
(`independent` gives the incompatible baseline). For BT^2 (spec 7.4) step t uses model t - 1's **full** embedding
as the old one, `d_old = d_new = dim(model t - 1)`, and adds `k = extra_dims` dimensions, so the widths grow by k per
step (32 -> 40 -> 48 with the defaults); each step also trains an independent teacher (new') of width `d_new` on the
same classes. The other methods keep `embedding_dim`. The MLP widths follow `experiment`: `old_hidden` for step
0, `new_hidden` afterwards; `backbone="resnet18"` (preset `SeriesConfig.resnet18_cifar()`) uses the CIFAR-style
ResNet-18 on image data instead, with random crop + flip augmentation.

With `run_dir`, a series can be killed and restarted: the config is stored in `run_dir/series.json` (a restart
with a different config is refused), each finished model is written to `run_dir/<name>.pt` (and BT^2's new'
teacher to `run_dir/<name>-prime.pt`) and skipped on restart, and the model being trained checkpoints every epoch
in `run_dir/<name>/` and resumes from its latest checkpoint. A resumed series ends with the same weights as an
uninterrupted one (bit for bit on CPU).

The matrix holds leave-one-out retrieval on the test split (all classes) for every (query model `i`, gallery model
`j`) pair, truncated to the first `min(d_i, d_j)` dims; the criterion for `i > j` is `M(i/j) > M(j/j)`.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bt2_compat.data import Dataset, class_subset, load_dataset
from bt2_compat.evaluate import METRICS, compatibility, embed
from bt2_compat.experiment import NEW_METHODS
from bt2_compat.io import load_model, save_model
from bt2_compat.models import BACKBONES, BT2Model, EmbeddingModel, ModelConfig, build_model
from bt2_compat.train import TrainConfig, train_model
from repro_core.checkpoint import atomic_write_text
from repro_core.config import checked_fields
from repro_core.errors import ConfigError
from repro_core.seeding import derive_seed

__all__ = ["SeriesConfig", "SeriesResult", "plot_series", "run_series"]

logger = logging.getLogger(__name__)

_CELL_METRICS = ("top1", "top5", "mAP")


@dataclass(frozen=True)
class SeriesConfig:
    """A model series (JSON round-trip with `to_dict`/`from_dict`)."""

    data: str = "digits"  #: data spec of `load_dataset`
    class_steps: tuple[int, ...] = (3, 6, 10)  #: model t sees labels < class_steps[t]; strictly increasing
    method: str = "bt2"  #: method of every step after the first (one of NEW_METHODS)
    seed: int = 0  #: series seed (init and data order of every model; the synthetic task)
    old_hidden: tuple[int, ...] = (128,)  #: step-0 MLP hidden widths
    new_hidden: tuple[int, ...] = (256, 256)  #: later steps' MLP hidden widths
    embedding_dim: int = 32  #: embedding d (BT^2: d_new)
    extra_dims: int = 8  #: BT^2's k
    scale_c: float = 2.0  #: BT^2's C
    metric: str = "cosine"  #: retrieval similarity
    train: TrainConfig = field(default_factory=TrainConfig)  #: shared optimisation settings
    backbone: str = "mlp"  #: "mlp" (vectors) or "resnet18"/"resnet50" (images [n, C, H, W])
    width: int = 64  #: ResNet base width

    @classmethod
    def resnet18_cifar(cls, **overrides: Any) -> SeriesConfig:
        """CIFAR-like preset: ResNet-18 (3x3 stem) on 32x32 synthetic images (20 classes, steps 10 -> 15 -> 20, as
        CIFAR-100's 50 -> 100 halves), d = 128, k = 32, C = 2 (the paper's
        head sizes), Adam 1e-3, weight decay 2^-15, batch 128, cosine LR with 1 warm-up epoch, 15 epochs, random
        crop (padding 4) + flip. `overrides` replace any field (e.g. `data="cifar100-python:<dir>"`)."""
        train = TrainConfig(
            epochs=15, batch_size=128, lr=1e-3, weight_decay=2.0**-15, warmup_epochs=1, augment=True, crop_padding=4
        )
        base: dict[str, Any] = {
            "data": "synthetic-images:20",
            "class_steps": (10, 15, 20),
            "backbone": "resnet18",
            "embedding_dim": 128,
            "extra_dims": 32,
            "scale_c": 2.0,
            "train": train,
        }
        base.update(overrides)
        return cls(**base)

    def __post_init__(self) -> None:
        for name in ("class_steps", "old_hidden", "new_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.train, dict):
            object.__setattr__(self, "train", TrainConfig.from_dict(self.train))
        steps = self.class_steps
        if len(steps) < 2:
            raise ConfigError(f"class_steps: expected at least 2 steps, got {list(steps)}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in steps):
            raise ConfigError(f"class_steps: expected positive integers, got {list(steps)}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ConfigError(f"class_steps: expected strictly increasing class counts, got {list(steps)}")
        if self.method not in NEW_METHODS:
            raise ConfigError(f"method: expected one of {NEW_METHODS}, got {self.method!r}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone: expected one of {BACKBONES}, got {self.backbone!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ConfigError(f"width: expected a positive integer, got {self.width!r}")
        if self.metric not in METRICS:
            raise ConfigError(f"metric: expected one of {METRICS}, got {self.metric!r}")
        if self.method == "bt2" and self.extra_dims > self.embedding_dim:
            raise ConfigError(f"extra_dims: BT^2 series need extra_dims <= embedding_dim, got {self.extra_dims}")
        if isinstance(self.extra_dims, bool) or not isinstance(self.extra_dims, int) or self.extra_dims < 0:
            raise ConfigError(f"extra_dims: expected an integer >= 0, got {self.extra_dims!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train"] = self.train.to_dict()
        for key in ("class_steps", "old_hidden", "new_hidden"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesConfig:
        return cls(**checked_fields(cls, data, "series config"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SeriesConfig:
        return cls.from_dict(json.loads(text))


@dataclass
class SeriesResult:
    """`matrix[metric][i][j]`: retrieval (%) with queries from model i and the gallery from model j."""

    config: SeriesConfig
    names: tuple[str, ...]
    matrix: dict[str, list[list[float]]]
    seconds: float
    models: dict[str, EmbeddingModel | BT2Model] = field(default_factory=dict, repr=False)
    resumed: tuple[str, ...] = ()  #: models loaded from `run_dir` instead of trained (finished before a restart)

    def criteria(self, metric: str = "mAP") -> dict[str, bool]:
        """`{"i/j": M(i/j) > M(j/j)}` for every newer model i and older model j."""
        values = self.matrix[metric]
        return {
            f"{self.names[i]}/{self.names[j]}": values[i][j] > values[j][j]
            for i in range(len(self.names))
            for j in range(i)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "names": list(self.names),
            "matrix": self.matrix,
            "criteria": {metric: self.criteria(metric) for metric in _CELL_METRICS},
            "seconds": self.seconds,
            "resumed": list(self.resumed),
        }


def _arch(config: SeriesConfig, data: Dataset, step: int, kind: str, old_dim: int, dim: int) -> ModelConfig:
    images = data.x_train.ndim == 4
    if config.backbone != "mlp" and not images:
        raise ConfigError(f"backbone: {config.backbone} needs image data [n, C, H, W]; {data.name} is vectors")
    return ModelConfig(
        kind=kind,
        backbone=config.backbone,
        width=config.width,
        in_channels=int(data.x_train.shape[1]) if images else 3,
        hidden=config.old_hidden if step == 0 else config.new_hidden,
        in_features=data.in_features,
        num_classes=data.num_classes,
        embedding_dim=dim,
        old_dim=old_dim,
        extra_dims=config.extra_dims,
        scale_c=config.scale_c,
    )


def _check_run_dir(config: SeriesConfig, run_dir: Path) -> None:
    """Create `run_dir` with `series.json`, or check that the series found there has the same config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stored = run_dir / "series.json"
    if stored.exists():
        try:
            found = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"run_dir {run_dir}: unreadable series.json ({exc})") from exc
        if found != config.to_dict():
            raise ConfigError(f"run_dir {run_dir}: it holds a series with a different config (series.json)")
    else:
        atomic_write_text(stored, json.dumps(config.to_dict(), indent=2, sort_keys=True))


def _train_or_load(
    path: Path | None,
    arch: ModelConfig,
    seed: int,
    x: Any,
    y: Any,
    train: TrainConfig,
    *,
    name: str,
    resumed: list[str],
    data: Dataset,
    **kwargs: Any,
) -> EmbeddingModel | BT2Model:
    """The finished model at `path` if a previous run wrote it, else train it (checkpoints next to `path`)."""
    if path is not None and path.exists():
        model, found, _ = load_model(path)
        if found != arch:
            raise ConfigError(f"run_dir: {path} has a different architecture than this series step")
        resumed.append(name)
        logger.info("series: %s loaded from %s", name, path)
        return model
    model = build_model(arch, seed)
    run_dir = path.with_suffix("") if path is not None else None
    train_model(model, x, y, train, run_dir=run_dir, desc=name, **kwargs)
    if path is not None:
        meta = {"series_step": name, "method": train.method, "train_config": train.to_dict()}
        save_model(path, model, arch, meta, dataset=data)
    return model


def run_series(
    config: SeriesConfig,
    *,
    dataset: Dataset | None = None,
    show_progress: bool = False,
    run_dir: str | Path | None = None,
    device: str = "cpu",
    on_epoch_end: Callable[[str, int, float], None] | None = None,
) -> SeriesResult:
    """Train the series (module docstring) and evaluate every (query, gallery) pair of its models.

    Args:
        dataset: use this data instead of `load_dataset(config.data)`.
        run_dir: checkpoints and finished models; a restarted series resumes there (module docstring).
        device: where to train and embed ("cpu", "cuda").
        on_epoch_end: called as `on_epoch_end(model_name, epoch, mean_loss)` after every training epoch.
    """
    start = time.perf_counter()
    data = dataset if dataset is not None else load_dataset(config.data, seed=config.seed)
    if config.class_steps[-1] > data.num_classes:
        raise ConfigError(f"class_steps: {config.class_steps[-1]} exceeds the number of classes ({data.num_classes})")
    _arch(config, data, 0, "embedding", config.embedding_dim, config.embedding_dim)  # data fits the backbone
    root = Path(run_dir) if run_dir is not None else None
    if root is not None:
        _check_run_dir(config, root)
    names = tuple(f"m{t}" for t in range(len(config.class_steps)))
    models: dict[str, EmbeddingModel | BT2Model] = {}
    resumed: list[str] = []
    previous: EmbeddingModel | BT2Model | None = None
    previous_dim = config.embedding_dim
    common: dict[str, Any] = {"num_classes": data.num_classes, "device": device, "show_progress": show_progress}
    for step, (name, n_classes) in enumerate(zip(names, config.class_steps, strict=True)):
        x, y = class_subset(data.x_train, data.y_train, n_classes)
        method = "independent" if step == 0 else config.method
        teacher = None
        dim = previous_dim if method == "bt2" else config.embedding_dim  # BT^2: d_new = d_old = previous width
        if method == "bt2":
            prime_seed = derive_seed(config.seed, "series", name, "new-prime")
            prime = f"{name}-prime"
            teacher = _train_or_load(
                root / f"{prime}.pt" if root is not None else None,
                _arch(config, data, step, "embedding", previous_dim, dim),
                prime_seed,
                x,
                y,
                replace(config.train, method="independent", seed=prime_seed),
                name=prime,
                resumed=resumed,
                data=data,
                on_epoch_end=_named(on_epoch_end, prime),
                **common,
            )
        seed = derive_seed(config.seed, "series", name)
        kind = "bt2" if method == "bt2" else "embedding"
        model = _train_or_load(
            root / f"{name}.pt" if root is not None else None,
            _arch(config, data, step, kind, previous_dim, dim),
            seed,
            x,
            y,
            replace(config.train, method=method, seed=seed),
            name=name,
            resumed=resumed,
            data=data,
            old_model=previous,
            new_prime_model=teacher,
            on_epoch_end=_named(on_epoch_end, name),
            **common,
        )
        models[name] = model
        previous = model
        previous_dim = dim + config.extra_dims if kind == "bt2" else config.embedding_dim
    embeddings = {
        name: embed(model, data.x_test, device=device, show_progress=show_progress) for name, model in models.items()
    }
    pairs = [(q, g) for q in names for g in names]
    cells = compatibility(embeddings, data.y_test, pairs, metric=config.metric, show_progress=show_progress).cells
    matrix = {metric: [[cells[f"{q}/{g}"][metric] for g in names] for q in names] for metric in _CELL_METRICS}
    seconds = time.perf_counter() - start
    logger.info("series %s (%s, %d steps): %.1f s", config.data, config.method, len(names), seconds)
    return SeriesResult(config, names, matrix, seconds, models, tuple(resumed))


def _named(callback: Callable[[str, int, float], None] | None, name: str) -> Callable[[int, float], None] | None:
    if callback is None:
        return None
    return lambda epoch, loss: callback(name, epoch, loss)


def plot_series(result: SeriesResult | dict[str, Any], path: str | Path, *, metric: str = "mAP") -> Path:
    """A heatmap PNG of `matrix[metric]` (rows: query model, columns: gallery model), values annotated."""
    from repro_core.report import new_figure, save_figure

    data = result.to_dict() if isinstance(result, SeriesResult) else result
    if metric not in data["matrix"]:
        raise ConfigError(f"metric: expected one of {sorted(data['matrix'])}, got {metric!r}")
    values = data["matrix"][metric]
    names = data["names"]
    size = 1.2 + 0.9 * len(names)
    figure = new_figure(size + 1.0, size)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="viridis", vmin=0.0, vmax=100.0)
    figure.colorbar(image, ax=axes, label=f"{metric} (%)")
    axes.set_xticks(range(len(names)), names)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("gallery model")
    axes.set_ylabel("query model")
    axes.set_title(f"{data['config']['method']} series: {metric}")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            axes.text(j, i, f"{value:.1f}", ha="center", va="center", color="white" if value < 60 else "black")
    return save_figure(figure, path)
