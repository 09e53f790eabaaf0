"""Finite-width ensembles of two-layer ReLU networks trained by full-batch gradient descent (spec 2.2, 2.3, 7.2).

Every member is ``f(x) = a_v V relu(a_w Wᵀ x + a_b b1) + a_b b2`` with ``W: [k, n]`` (stored input-major, so
that at the training inputs e_j the pre-activations are the rows of W and no input matmul is needed) and
``V: [k, n]``:

- ``parametrization="ntk"``: every parameter N(0, 1), ``a_w = σ_w/√k``, ``a_v = σ_w/√n``, ``a_b = σ_b``
  (neural-tangents' default; the ensemble tends to the NTK-GP);
- ``parametrization="standard"`` (the official v1 code): W ~ N(0, σ_w²/k), V ~ N(0, σ_w²/n), biases N(0, σ_b²),
  no multipliers; the last layer dominates training and the ensemble tends to the NNGP-GP (spec 4.3).

The members are trained together: parameters are stacked along a leading member axis and one step is a handful of
batched matmuls (JAX: `jax.vmap` of `jax.grad` under `jax.jit`, a `lax.fori_loop` over steps; torch: hand-written
batched backprop), so there is no Python loop over members in training. Member i's initialisation depends only on
(seed, i) — `jax.random.fold_in` of a `repro_core.seeding.jax_key` in JAX, `repro_core.seeding.torch_generator`
per member in torch — so results do not depend on chunking or on the number of devices. With several JAX devices
a chunk of members is sharded over them (`NamedSharding` over a 1-d "members" mesh).

Default schedule ("from the analytic spectrum"): with the infinite-width training Gram matrix Θ_tr of the chosen
parametrisation (`ntk_permute.kernels.nngp_ntk`), the effective rate is η = 1/λ_max and the number of steps
``⌈decay/(η λ_min)⌉`` (decay = 30 e-folds of the slowest mode: a residual ~1e-13 in float64). The paper's recipe
(standard parametrisation, mean-reduced MSE, lr 1e-3, 10,000 epochs, width 50,000, trainable zero-initialised
biases) is the `TrainConfig.paper` preset.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ntk_permute.gp import check_permutation, normalise_inputs, train_targets
from ntk_permute.kernels import PARAMETRIZATIONS, Parametrization, nngp_ntk
from repro_core.config import checked_fields
from repro_core.errors import ConfigError
from repro_core.optional import require
from repro_core.seeding import jax_key, torch_generator

__all__ = [
    "ACCELERATOR_CHUNK",
    "BACKENDS",
    "CPU_CHUNK_BYTES",
    "DTYPES",
    "LOSSES",
    "Schedule",
    "TrainConfig",
    "TrainedEnsemble",
    "auto_member_chunk",
    "schedule_from_spectrum",
    "train_ensemble",
    "training_devices",
]

logger = logging.getLogger(__name__)

Backend = Literal["jax", "torch"]
#: Accepted values of `TrainConfig.backend`.
BACKENDS: tuple[str, ...] = ("jax", "torch")
#: Accepted values of `TrainConfig.dtype`.
DTYPES: tuple[str, ...] = ("float64", "float32")
#: Accepted values of `TrainConfig.loss`: "sum" = ½ Σ ‖f − y‖² (the theory's convention), "mean" = F.mse_loss.
LOSSES: tuple[str, ...] = ("sum", "mean")
#: Hidden activations evaluated at once per chunk (members × inputs × width), ~256 MB in float64.
EVAL_BUDGET = 1 << 25


def _positive_int(value: Any, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected an integer >= 1, got {value!r}")


def _real(value: Any, name: str, *, positive: bool, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{name}: must be > 0, got {value!r}")
    if not positive and value < 0:
        raise ConfigError(f"{name}: must be >= 0, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to build and train an ensemble; JSON round-trip with `to_json` / `from_json`.

    Attributes:
        k: input and output dimension (the permutation size).
        width: hidden width n.
        n_members: ensemble size M.
        parametrization: "ntk" (→ NTK-GP) or "standard" (→ NNGP-GP; the official code).
        w_std, b_std: σ_w and σ_b.
        bias: train biases b1, b2 (initialised N(0, σ_b²); the official code: True with σ_b = 0).
        learning_rate: step size for `loss`; None = 1/λ_max of the analytic training kernel.
        steps: gradient-descent steps (full batch = epochs); None = ⌈decay/(η λ_min)⌉.
        decay: e-folds of the slowest kernel mode used by the default `steps`.
        loss: "sum" (½ Σ ‖f − y‖²) or "mean" (mean over the k × k entries, as torch's F.mse_loss).
        backend: "jax" (jit + vmap; primary) or "torch" (batched tensors, hand-written backprop).
        dtype: "float64" (CPU default: residual ~1e-13) or "float32" (GPUs, benchmarks).
        member_chunk: members trained at once; None = automatic: on a CPU as many as keep one chunk's weights,
            gradients and activations (~5·k·n values a member) within `CPU_CHUNK_BYTES`, so all steps of a chunk run
            in cache (3x faster than one 256-member chunk at k = 10, n = 1024); on an accelerator 1,024.
        seed: experiment seed; member i uses the stream derived from (seed, "init", i).
        device: "cpu", "cuda", "cuda:N" or "mps" (torch only); None = automatic (torch:
            `repro_core.device.pick_device()`, JAX: its default devices). See `training_devices`.
        shard: JAX: shard each chunk over all local devices when there are several.
    """

    k: int = 8
    width: int = 1024
    n_members: int = 64
    parametrization: Parametrization = "ntk"
    w_std: float = 1.0
    b_std: float = 0.0
    bias: bool = False
    learning_rate: float | None = None
    steps: int | None = None
    decay: float = 30.0
    loss: Literal["sum", "mean"] = "sum"
    backend: Backend = "jax"
    dtype: Literal["float64", "float32"] = "float64"
    member_chunk: int | None = None
    seed: int = 0
    device: str | None = None
    shard: bool = True

    def __post_init__(self) -> None:
        _positive_int(self.k, "k")
        _positive_int(self.width, "width")
        _positive_int(self.n_members, "n_members")
        _positive_int(self.member_chunk, "member_chunk", allow_none=True)
        _positive_int(self.steps, "steps", allow_none=True)
        if self.parametrization not in PARAMETRIZATIONS:
            raise ConfigError(f"parametrization: expected one of {PARAMETRIZATIONS}, got {self.parametrization!r}")
        _real(self.w_std, "w_std", positive=True)
        _real(self.b_std, "b_std", positive=False)
        _real(self.learning_rate, "learning_rate", positive=True, allow_none=True)
        _real(self.decay, "decay", positive=True)
        if not isinstance(self.bias, bool):
            raise ConfigError(f"bias: expected true or false, got {self.bias!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss: expected one of {LOSSES}, got {self.loss!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: expected one of {BACKENDS}, got {self.backend!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: expected one of {DTYPES}, got {self.dtype!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed: expected an integer in [0, 2**32), got {self.seed!r}")
        if self.device is not None and not isinstance(self.device, str):
            raise ConfigError(f"device: expected a device name or null, got {self.device!r}")

    @classmethod
    def paper(cls, k: int, n_members: int = 320, **overrides: Any) -> TrainConfig:
        """The official v1 recipe (opallab/permlearn): standard parametrisation, width 50,000, SGD lr 1e-3 on
        F.mse_loss, 10,000 full-batch epochs, trainable biases starting at 0, float32. A GPU job."""
        values: dict[str, Any] = {
            "k": k,
            "n_members": n_members,
            "width": 50_000,
            "parametrization": "standard",
            "w_std": 1.0,
            "b_std": 0.0,
            "bias": True,
            "learning_rate": 1e-3,
            "steps": 10_000,
            "loss": "mean",
            "dtype": "float32",
            "member_chunk": 64,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, k: int = 5, **overrides: Any) -> TrainConfig:
        """A seconds-on-CPU configuration for tests and demos (width 256, 32 members)."""
        values: dict[str, Any] = {"k": k, "width": 256, "n_members": 32}
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are a `ConfigError` naming them."""
        return cls(**checked_fields(cls, data, "config"))

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config: not valid JSON ({exc})") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class Schedule:
    """The gradient-descent schedule and the analytic spectrum it came from.

    Attributes:
        learning_rate: the step size applied to `loss`.
        steps: number of full-batch steps.
        effective_rate: η in the theory's convention (½ Σ loss): lr for "sum", 2·lr/k² for "mean".
        lambda_max, lambda_min: extreme eigenvalues of the infinite-width training NTK of the parametrisation.
        predicted_decay: η λ_min · steps, the e-folds the slowest mode decays in the linearised dynamics.
    """

    learning_rate: float
    steps: int
    effective_rate: float
    lambda_max: float
    lambda_min: float
    predicted_decay: float


def schedule_from_spectrum(config: TrainConfig) -> Schedule:
    """Learning rate and steps for `config` from the analytic training NTK (unless both are set explicitly)."""
    k = config.k
    _, theta = nngp_ntk(
        np.eye(k),
        w_std=config.w_std,
        b_std=config.b_std,
        parametrization=config.parametrization,
        width=config.width if config.parametrization == "standard" else None,
        trainable_bias=config.bias if config.parametrization == "standard" else None,
    )
    evals = np.linalg.eigvalsh(theta)
    lam_min, lam_max = float(evals[0]), float(evals[-1])
    scale = 1.0 if config.loss == "sum" else 2.0 / (k * k)  # d(mean loss) = (2/k²) d(½ Σ loss)
    lr = config.learning_rate if config.learning_rate is not None else 1.0 / (lam_max * scale)
    eta = lr * scale
    if eta * lam_max >= 2.0:
        logger.warning("learning rate %.3g is beyond the stability limit 2/lambda_max of the analytic kernel", lr)
    steps = config.steps if config.steps is not None else max(1, math.ceil(config.decay / (eta * lam_min)))
    return Schedule(
        learning_rate=float(lr),
        steps=int(steps),
        effective_rate=float(eta),
        lambda_max=lam_max,
        lambda_min=lam_min,
        predicted_decay=float(eta * lam_min * steps),
    )


def _multipliers(config: TrainConfig) -> tuple[float, float, float]:
    """(a_w, a_v, a_b): forward-pass multipliers of the first layer, the last layer and the biases."""
    if config.parametrization == "ntk":
        return config.w_std / math.sqrt(config.k), config.w_std / math.sqrt(config.width), config.b_std
    return 1.0, 1.0, 1.0


def _init_stds(config: TrainConfig) -> tuple[float, float, float]:
    """Initial standard deviations of (W, V, biases)."""
    if config.parametrization == "ntk":
        return 1.0, 1.0, 1.0
    return config.w_std / math.sqrt(config.k), config.w_std / math.sqrt(config.width), config.b_std


#: CPU working-set budget of one member chunk (weights, gradients, activations): about an L2 plus a share of L3.
#: Tuned with benchmarks/bench_training.py on a 2-core machine (k = 10, n = 1024, float32: best at ~30 members).
CPU_CHUNK_BYTES = 6 * 2**20
#: Members per chunk on an accelerator, where one large batched step is what keeps the device busy.
ACCELERATOR_CHUNK = 1024


def auto_member_chunk(config: TrainConfig, on_cpu: bool) -> int:
    """`config.member_chunk`, or the automatic choice for a CPU or an accelerator (see `TrainConfig`)."""
    if config.member_chunk is not None:
        return config.member_chunk
    if not on_cpu:
        return min(config.n_members, ACCELERATOR_CHUNK)
    itemsize = 8 if config.dtype == "float64" else 4
    per_member = 5 * config.k * config.width * itemsize
    return max(1, min(config.n_members, CPU_CHUNK_BYTES // per_member))


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


# --------------------------------------------------------------------------------------------------------- JAX

#: Jitted (train, apply) pairs per network kind (a compilation cache, not state that changes results).
_JAX_CACHE: dict[tuple[Any, ...], tuple[Callable[..., Any], Callable[..., Any]]] = {}


class _JaxBackend:
    """Training and evaluation of stacked members with jax.jit / jax.vmap (float64 under `jax.enable_x64`)."""

    def __init__(self, config: TrainConfig, schedule: Schedule) -> None:
        self.jax = require("jax", "ntk_permute training with backend='jax'")
        self.jnp = self.jax.numpy
        self.config = config
        self.schedule = schedule
        self.x64 = config.dtype == "float64"
        self.devices = training_devices(config)
        self.on_cpu = self.devices[0].platform == "cpu"
        self._train_fn: Callable[..., Any] | None = None
        self._apply_fn: Callable[..., Any] | None = None

    def context(self) -> Any:
        return self.jax.enable_x64(self.x64)

    def _member_init(self, key: Any) -> dict[str, Any]:
        jax, jnp, cfg = self.jax, self.jnp, self.config
        dtype = jnp.float64 if self.x64 else jnp.float32
        std_w, std_v, std_b = _init_stds(cfg)
        k_w, k_v, k_b1, k_b2 = jax.random.split(key, 4)
        params = {
            "W": std_w * jax.random.normal(k_w, (cfg.k, cfg.width), dtype),
            "V": std_v * jax.random.normal(k_v, (cfg.k, cfg.width), dtype),
        }
        if cfg.bias:
            params["b1"] = std_b * jax.random.normal(k_b1, (cfg.width,), dtype)
            params["b2"] = std_b * jax.random.normal(k_b2, (cfg.k,), dtype)
        return params

    def _forward(self, params: dict[str, Any], x: Any | None) -> Any:
        """One member: `x: [b, k]` -> `[b, k]`; `x = None` means the k basis vectors (then `W` is the input map)."""
        a_w, a_v, a_b = _multipliers(self.config)
        pre = a_w * (params["W"] if x is None else x @ params["W"])
        if "b1" in params:
            pre = pre + a_b * params["b1"]
        out = a_v * (self.jax.nn.relu(pre) @ params["V"].T)
        if "b2" in params:
            out = out + a_b * params["b2"]
        return out

    def _cache_key(self) -> tuple[Any, ...]:
        cfg = self.config
        return (cfg.k, cfg.width, cfg.parametrization, cfg.w_std, cfg.b_std, cfg.bias, cfg.loss, cfg.dtype)

    def _build(self) -> None:
        """Build (or reuse) the jitted functions: they depend on the network's shape and kind only, so ensembles that
        differ in seed, size, schedule or devices share one compilation."""
        cached = _JAX_CACHE.get(self._cache_key())
        if cached is not None:
            self._train_fn, self._apply_fn = cached
            return
        jax, jnp = self.jax, self.jnp
        cfg = self.config
        mean_loss = cfg.loss == "mean"

        def loss(params: dict[str, Any], y: Any) -> Any:
            diff = self._forward(params, None) - y
            return jnp.mean(diff * diff) if mean_loss else 0.5 * jnp.sum(diff * diff)

        grad = jax.grad(loss)

        def member_step(params: dict[str, Any], y: Any, lr: Any) -> dict[str, Any]:
            g = grad(params, y)
            return jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g)

        step_all = jax.vmap(member_step, in_axes=(0, None, None))
        init_all = jax.vmap(lambda base, i: self._member_init(jax.random.fold_in(base, i)), in_axes=(None, 0))
        apply_all = jax.vmap(self._forward, in_axes=(0, None))
        basis_all = jax.vmap(lambda p: self._forward(p, None))

        def train(base_key: Any, indices: Any, y: Any, lr: Any, steps: int) -> tuple[Any, Any]:
            params = init_all(base_key, indices)
            params = jax.lax.fori_loop(0, steps, lambda _, p: step_all(p, y, lr), params)
            residual = jnp.max(jnp.abs(basis_all(params) - y), axis=(1, 2))
            return params, residual

        self._train_fn = jax.jit(train, static_argnames=("steps",))
        self._apply_fn = jax.jit(apply_all)
        if len(_JAX_CACHE) >= 16:
            _JAX_CACHE.pop(next(iter(_JAX_CACHE)))
        _JAX_CACHE[self._cache_key()] = (self._train_fn, self._apply_fn)

    def _member_sharding(self) -> Any:
        if len(self.devices) < 2:
            return None
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(self.devices), ("members",))
        return NamedSharding(mesh, PartitionSpec("members"))

    def train_chunk(self, start: int, stop: int, y: np.ndarray) -> tuple[Any, np.ndarray, int]:
        """Initialise and train members start..stop-1 on targets `y: [k, k]` (row j: target of e_j).

        With several devices the chunk is padded to a multiple of the device count (extra members start..padded-1
        are trained and kept, so that the parameters stay sharded over "members": slicing them off would gather
        them onto one device); only the first stop - start rows are members of the ensemble.

        Returns (params `[padded, ...]`, residual `[stop - start]`, padded size)."""
        jax, jnp = self.jax, self.jnp
        if self._train_fn is None:
            self._build()
        assert self._train_fn is not None
        count = stop - start
        n_dev = len(self.devices)
        padded = count if n_dev < 2 else -(-count // n_dev) * n_dev
        indices = jnp.arange(start, start + padded, dtype=jnp.uint32)
        # Committing the indices to the device(s) places the whole jitted computation there.
        sharding = self._member_sharding()
        indices = jax.device_put(indices, sharding if sharding is not None else self.devices[0])
        base = jax_key(self.config.seed, "ntk-permute", "init")
        params, residual = self._train_fn(
            base, indices, jnp.asarray(y), self.schedule.learning_rate, steps=self.schedule.steps
        )
        return params, np.asarray(residual)[:count], padded

    def apply(self, params: Any, x: np.ndarray) -> np.ndarray:
        """`x: [b, k]` -> outputs of every member in `params`, `[m, b, k]` numpy."""
        if self._apply_fn is None:
            self._build()
        assert self._apply_fn is not None
        return np.asarray(self._apply_fn(params, self.jnp.asarray(x)))

    def sharding_of(self, params: Any) -> str:
        return str(params["W"].sharding)


# ------------------------------------------------------------------------------------------------------- torch


class _TorchBackend:
    """Training and evaluation of stacked members as `[M, ...]` torch tensors with hand-written backprop."""

    def __init__(self, config: TrainConfig, schedule: Schedule) -> None:
        self.torch = require("torch", "ntk_permute training with backend='torch'")
        self.config = config
        self.schedule = schedule
        self.device = training_devices(config)[0]
        self.on_cpu = self.device.type == "cpu"
        self.dtype = self.torch.float64 if config.dtype == "float64" else self.torch.float32

    def context(self) -> Any:
        return self.torch.no_grad()

    def _init(self, start: int, stop: int) -> dict[str, Any]:
        torch, cfg = self.torch, self.config
        std_w, std_v, std_b = _init_stds(cfg)
        names = ["W", "V"] + (["b1", "b2"] if cfg.bias else [])
        shapes = {"W": (cfg.k, cfg.width), "V": (cfg.k, cfg.width), "b1": (cfg.width,), "b2": (cfg.k,)}
        stds = {"W": std_w, "V": std_v, "b1": std_b, "b2": std_b}
        params = {name: torch.empty((stop - start, *shapes[name]), dtype=self.dtype) for name in names}
        # One generator per member (initialisation only; training below is batched over members).
        for row, member in enumerate(range(start, stop)):
            gen = torch_generator(cfg.seed, "ntk-permute", "init", member)
            for name in names:
                params[name][row] = torch.randn(shapes[name], generator=gen, dtype=self.dtype) * stds[name]
        return {name: value.to(self.device) for name, value in params.items()}

    def _forward(self, params: dict[str, Any], x: Any | None) -> tuple[Any, Any, Any]:
        """Members `[m, ...]`, `x: [b, k]` or None (the basis) -> (pre-activations `[m, b, n]`, activations,
        outputs `[m, b, k]`)."""
        a_w, a_v, a_b = _multipliers(self.config)
        pre = params["W"] * a_w if x is None else self.torch.matmul(x, params["W"]) * a_w
        if "b1" in params:
            pre = pre + a_b * params["b1"][:, None, :]
        act = self.torch.relu(pre)
        out = self.torch.bmm(act, params["V"].transpose(1, 2)) * a_v
        if "b2" in params:
            out = out + a_b * params["b2"][:, None, :]
        return pre, act, out

    def _step(self, params: dict[str, Any], y: Any, lr: float) -> None:
        """One full-batch step on the basis vectors (x = I, so the first layer's gradient is the backprop itself)."""
        torch = self.torch
        a_w, a_v, a_b = _multipliers(self.config)
        pre, act, out = self._forward(params, None)
        err = out - y  # dL/dout for the ½ Σ loss; the mean loss scales it by 2/(k k)
        if self.config.loss == "mean":
            err = err * (2.0 / err[0].numel())
        grad_v = torch.bmm(err.transpose(1, 2), act)  # [m, k, n], times a_v
        back = torch.bmm(err, params["V"])  # [m, k, n], times a_v
        back.masked_fill_(pre <= 0, 0.0)
        if "b1" in params:
            params["b1"].sub_(back.sum(dim=1), alpha=lr * a_v * a_b)
            params["b2"].sub_(err.sum(dim=1), alpha=lr * a_b)
        params["V"].sub_(grad_v, alpha=lr * a_v)
        params["W"].sub_(back, alpha=lr * a_v * a_w)

    def train_chunk(self, start: int, stop: int, y: np.ndarray) -> tuple[Any, np.ndarray, int]:
        torch = self.torch
        params = self._init(start, stop)
        yt = torch.as_tensor(y, dtype=self.dtype, device=self.device)
        for _ in range(self.schedule.steps):
            self._step(params, yt, self.schedule.learning_rate)
        _, _, out = self._forward(params, None)
        residual = (out - yt).abs().amax(dim=(1, 2)).cpu().numpy()
        return params, residual, stop - start

    def apply(self, params: Any, x: np.ndarray) -> np.ndarray:
        xt = self.torch.as_tensor(x, dtype=self.dtype, device=self.device)
        return self._forward(params, xt)[2].cpu().numpy()

    def sharding_of(self, params: Any) -> str:
        return str(params["W"].device)


def training_devices(config: TrainConfig) -> list[Any]:
    """The devices `train_ensemble` uses for `config`: JAX devices (sharded over when several), or one torch device.

    `config.device` is a torch-style name ("cpu", "cuda", "cuda:1", "mps"; None = automatic). A name that is not a
    device, a device that is not available, or one the backend cannot use (JAX has no MPS) is a `ConfigError`
    naming it, so a caller can check before any work starts.
    """
    from repro_core.device import pick_device

    if config.backend == "torch":
        require("torch", "ntk_permute training with backend='torch'")
        return [pick_device(config.device)]
    jax = require("jax", "ntk_permute training with backend='jax'")
    if config.device is None:
        devices = list(jax.devices())
    else:
        device = pick_device(config.device)  # checks the name and that torch sees the device
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"device: {config.device!r} cannot be used by the jax backend; use backend 'torch'")
        platform = "cpu" if device.type == "cpu" else "gpu"
        try:
            devices = list(jax.devices(platform))
        except RuntimeError as exc:
            raise ConfigError(
                f"device: {config.device!r} requested but JAX has no {platform} backend ({exc})"
            ) from None
        if device.index is not None:
            if device.index >= len(devices):
                raise ConfigError(f"device: {config.device!r} requested but JAX sees only {len(devices)} GPUs")
            devices = [devices[device.index]]
    return devices if config.shard else devices[:1]


def _make_backend(config: TrainConfig, schedule: Schedule) -> _JaxBackend | _TorchBackend:
    return _JaxBackend(config, schedule) if config.backend == "jax" else _TorchBackend(config, schedule)


# ---------------------------------------------------------------------------------------------------- ensemble


@dataclass
class TrainedEnsemble:
    """M trained members, stored per training chunk in the backend's arrays.

    Attributes:
        config: the `TrainConfig` used.
        perm: the permutation learned (``perm[j] = π(j)``).
        schedule: the schedule used.
        residual_: `[M]` max |f(e_j) − P e_j| of each member after training.
        chunks: per training chunk, `(first member, members, parameters [padded, ...])`: the parameter arrays may
            carry padding rows after the chunk's members (JAX over several devices, to keep them sharded).
    """

    config: TrainConfig
    perm: np.ndarray
    schedule: Schedule
    residual_: np.ndarray
    chunks: list[tuple[int, int, Any]] = field(repr=False)
    _backend: Any = field(repr=False, default=None)

    @property
    def n_members(self) -> int:
        return int(self.residual_.size)

    def _member_blocks(self, members: int | None) -> Iterator[tuple[Any, int]]:
        """Yield (parameter block, members) over the first `members` members (default: all).

        A block may have more rows than members (padding); the caller keeps the first `members` rows of its outputs.
        """
        limit = self.n_members if members is None else int(members)
        if not 1 <= limit <= self.n_members:
            raise ValueError(f"members: expected 1..{self.n_members}, got {members!r}")
        for start, size, params in self.chunks:
            if start >= limit:
                return
            take = min(size, limit - start)
            yield (params if take == size else {n: v[:take] for n, v in params.items()}), take

    def _input_chunk(self, members_in_block: int, input_chunk: int | None) -> int:
        if input_chunk is not None:
            if isinstance(input_chunk, bool) or not isinstance(input_chunk, int) or input_chunk < 1:
                raise ValueError(f"input_chunk: expected an integer >= 1, got {input_chunk!r}")
            return input_chunk
        return max(1, EVAL_BUDGET // (members_in_block * self.config.width))

    def outputs(
        self, x: np.ndarray, *, normalise: bool = True, members: int | None = None, input_chunk: int | None = None
    ) -> np.ndarray:
        """Every member's output at `x: [N, k]`: `[M, N, k]` (float64 numpy), chunked over members and inputs."""
        x = self._check_inputs(x, normalise)
        blocks = []
        with self._backend.context():
            for params, size in self._member_blocks(members):
                step = self._input_chunk(size, input_chunk)
                blocks.append(
                    np.concatenate(
                        [self._backend.apply(params, x[i : i + step])[:size] for i in range(0, x.shape[0], step)],
                        axis=1,
                    )
                )
        return np.concatenate(blocks, axis=0).astype(np.float64)

    def moments(
        self, x: np.ndarray, *, normalise: bool = True, members: int | None = None, input_chunk: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and across-member variance (ddof = 1) at `x: [N, k]`, each `[N, k]`.

        Running sums over member blocks and input chunks: memory O(N k + chunk), never `[M, N, k]`.
        """
        x = self._check_inputs(x, normalise)
        total = np.zeros(x.shape, dtype=np.float64)
        squares = np.zeros(x.shape, dtype=np.float64)
        count = 0
        with self._backend.context():
            for params, size in self._member_blocks(members):
                step = self._input_chunk(size, input_chunk)
                for i in range(0, x.shape[0], step):
                    out = self._backend.apply(params, x[i : i + step])[:size].astype(np.float64)
                    total[i : i + step] += out.sum(axis=0)
                    squares[i : i + step] += np.square(out).sum(axis=0)
                count += size
        mean = total / count
        variance = (squares - count * mean**2) / max(count - 1, 1)
        return mean, np.maximum(variance, 0.0)

    def _check_inputs(self, x: np.ndarray, normalise: bool) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.config.k:
            raise ValueError(f"x: expected shape [N, {self.config.k}], got {arr.shape}")
        return normalise_inputs(arr) if normalise else arr

    def placement(self) -> str:
        """Where the first chunk's parameters live (a JAX sharding or a torch device), for logs and tests."""
        return str(self._backend.sharding_of(self.chunks[0][2]))


def train_ensemble(
    config: TrainConfig,
    perm: np.ndarray | list[int] | None = None,
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> TrainedEnsemble:
    """Train `config.n_members` networks on ``{(e_j, P e_j)}`` by full-batch gradient descent.

    Args:
        config: the ensemble (see `TrainConfig`).
        perm: the permutation (``perm[j] = π(j)``); None = the identity.
        on_chunk: called with the number of members done after each chunk (progress bars).

    Returns:
        A `TrainedEnsemble`; `residual_` says how far each member is from interpolating its training set.
    """
    perm = np.arange(config.k) if perm is None else check_permutation(perm, config.k)
    schedule = schedule_from_spectrum(config)
    backend = _make_backend(config, schedule)
    y_train = train_targets(perm)
    chunks: list[tuple[int, int, Any]] = []
    residuals = []
    with backend.context():
        for start, stop in _chunks(config.n_members, auto_member_chunk(config, backend.on_cpu)):
            params, residual, _ = backend.train_chunk(start, stop, y_train)
            chunks.append((start, stop - start, params))
            residuals.append(residual)
            if on_chunk is not None:
                on_chunk(stop)
    residual_ = np.concatenate(residuals).astype(np.float64)
    worst = float(residual_.max())
    logger.info(
        "trained %d members (%s, %s, k=%d, n=%d): lr %.4g, %d steps, max residual %.3g",
        config.n_members,
        config.backend,
        config.parametrization,
        config.k,
        config.width,
        schedule.learning_rate,
        schedule.steps,
        worst,
    )
    if not np.isfinite(worst) or worst > 1e-3:
        logger.warning(
            "training did not converge: max residual %.3g (lr %.4g, %d steps)",
            worst,
            schedule.learning_rate,
            schedule.steps,
        )
    return TrainedEnsemble(
        config=config, perm=perm, schedule=schedule, residual_=residual_, chunks=chunks, _backend=backend
    )
