"""Memory estimates of the CLI's runs, so a run too large for the machine is refused before it starts.

Each estimate lists its largest allocations as `Need(what, bytes, options)`: `options` are the command-line options
that make it grow, which the refusal names. The estimates count the arrays the code allocates (see the functions
they mirror) and round in the safe direction; they are meant to tell 1 GB from 1 TB, not to be exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ntk_permute.training import EVAL_BUDGET, TrainConfig, auto_member_chunk
from repro_core.errors import ConfigError

__all__ = [
    "Need",
    "available_bytes",
    "check_fits",
    "exhaustive_needs",
    "figure1_needs",
    "format_bytes",
    "p_all_needs",
    "train_needs",
]

#: Bytes of a float64 value.
_F64 = 8


@dataclass(frozen=True)
class Need:
    """One allocation of a run: what it is, its size in bytes, and the options that make it grow."""

    what: str
    bytes: int
    options: tuple[str, ...]


def format_bytes(count: float) -> str:
    """`count` bytes as "512 MB", "3.2 TB" (powers of 1000, the units memory is sold in)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def available_bytes() -> int:
    """Memory this machine can give a run now (available RAM; see `repro_core.device.free_memory_bytes`)."""
    from repro_core.device import free_memory_bytes

    return free_memory_bytes("cpu")


def check_fits(needs: Sequence[Need], available: int | None = None) -> None:
    """Raise `ConfigError` naming the options of the largest allocation when the total exceeds `available`."""
    total = sum(need.bytes for need in needs)
    available = available_bytes() if available is None else available
    if total <= available:
        return
    largest = max(needs, key=lambda need: need.bytes)
    raise ConfigError(
        f"{'/'.join(largest.options)}: the run needs an estimated {format_bytes(total)} of memory "
        f"({largest.what}: {format_bytes(largest.bytes)}), more than the {format_bytes(available)} available; "
        f"lower {' or '.join(largest.options)}"
    )


def _itemsize(config: TrainConfig) -> int:
    return 8 if config.dtype == "float64" else 4


def ensemble_needs(config: TrainConfig, *, on_cpu: bool, inputs: int, members_option: str = "--members") -> list[Need]:
    """The trained parameters (every member is kept), one training chunk's working set (`train_ensemble`) and the
    hidden activations of one evaluation block at `inputs` inputs (`TrainedEnsemble._input_chunk`)."""
    k, width, size = config.k, config.width, _itemsize(config)
    per_member = (2 * k * width + ((width + k) if config.bias else 0)) * size
    chunk = min(auto_member_chunk(config, on_cpu), config.n_members)
    hidden = min(max(EVAL_BUDGET, chunk * width), chunk * max(inputs, 1) * width)
    return [
        Need("trained parameters", config.n_members * per_member, (members_option, "--width")),
        # weights, gradients and activations of the members trained at once
        Need("one training chunk", chunk * 5 * k * width * size, ("--member-chunk", "--width")),
        Need("evaluation activations", 2 * hidden * size, ("--width",)),
    ]


def _outputs_need(what: str, members: int, inputs: int, k: int, options: tuple[str, ...]) -> Need:
    """`TrainedEnsemble.outputs` at `inputs` inputs, `[M, N, k]` float64, with two temporaries of its size."""
    return Need(what, 3 * members * inputs * k * _F64, options)


def train_needs(config: TrainConfig, *, on_cpu: bool) -> list[Need]:
    """`ntk-permute train`: the ensemble, and the per-model statistics at all C(k, 2) inputs with two ones."""
    inputs = math.comb(config.k, 2)
    needs = ensemble_needs(config, on_cpu=on_cpu, inputs=max(inputs, 4096))  # 4096: `evaluate_all_inputs`' chunk
    if inputs:
        members = ("--k", "--members")
        needs.append(Need("the inputs with two ones", inputs * config.k * (1 + _F64), ("--k",)))
        needs.append(_outputs_need("outputs at the inputs with two ones", config.n_members, inputs, config.k, members))
    return needs


def figure1_needs(config: TrainConfig, *, pool: int, num_tests: int, on_cpu: bool) -> list[Need]:
    """`ntk-permute experiment figure1` at one k: the pool, the test inputs and their outputs (`figure1`)."""
    needs = ensemble_needs(config.replace(n_members=pool), on_cpu=on_cpu, inputs=num_tests, members_option="--pool")
    needs.append(Need("test inputs", num_tests * config.k * (2 * _F64 + 1), ("--num-tests",)))
    needs.append(_outputs_need("outputs at the test inputs", pool, num_tests, config.k, ("--pool", "--num-tests")))
    return needs


def exhaustive_needs(k: int, *, perms: int, chunk_size: int) -> list[Need]:
    """`ntk-permute analytic --exhaustive`: the permutations and one chunk of inputs (`exhaustive_check`)."""
    chunk = min(chunk_size, 2**k - 1)
    return [
        # the permutation arrays (numpy's header included) and, in kernel mode, their [k, k] posterior weights
        Need("the permutations", perms * (k * _F64 + k * k * _F64 + 256), ("--perms",)),
        Need("the means of one chunk", perms * chunk * k * (_F64 + 2), ("--perms", "--chunk-size")),
        # the chunk's bits, normalised inputs and cross-kernel matrices
        Need("one chunk of inputs", 12 * chunk * k * _F64, ("--chunk-size",)),
    ]


def p_all_needs(k: int, *, draws: int, n_members: int) -> list[Need]:
    """`ntk-permute experiment p-all` at one k (`joint_exact_probability`)."""
    inputs = 2**k - 1 - k
    return [
        Need("the GP covariance and its Cholesky factor", 6 * inputs * inputs * _F64, ("--k",)),
        Need("one block of draws", 3 * inputs * 1024 * k * _F64, ("--k",)),
        Need("the draws' minima", draws * (_F64 + 2 * n_members), ("--draws", "--members")),
    ]
