"""repro_core.distributed: a real 2-process gloo run under torchrun on the CPU."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from repro_core.distributed import DistContext, init_from_env, is_main_process, rank_seed, write_on_main
from repro_core.errors import ConfigError
from repro_core.testing import run_torchrun

WORKER = textwrap.dedent(
    """
    import json, logging, sys
    from pathlib import Path
    import torch
    import torch.distributed as dist
    from repro_core.distributed import (all_reduce_gradients, init_from_env, rank_seed, rank_zero_only_logging,
                                        shutdown, write_on_main)
    from repro_core.seeding import derive_seed, torch_generator

    out = Path(sys.argv[1])
    ctx = init_from_env()
    total = torch.tensor([float(ctx.rank + 1)])
    dist.all_reduce(total)                                   # 1 + 2 = 3 on both ranks
    init = torch.rand(3, generator=torch_generator(derive_seed(0, "init")))      # same on every rank
    data = torch.rand(3, generator=torch.Generator().manual_seed(rank_seed(0, ctx.rank, "data")))
    gathered = [torch.zeros(3) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, data)
    weight, unused = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.full((2, 2), float(ctx.rank + 1))
    unused.grad = torch.ones(3) if ctx.rank == 1 else None     # a gradient on one rank only
    all_reduce_gradients([weight, unused])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    with rank_zero_only_logging():
        logging.getLogger("worker").info("log line from rank %d", ctx.rank)
    write_on_main((out / "main.txt").write_text, f"written by rank {ctx.rank}")
    (out / f"rank{ctx.rank}.json").write_text(json.dumps({
        "ctx": [ctx.rank, ctx.world_size, ctx.local_rank, ctx.backend, ctx.is_main],
        "total": total.item(), "init": init.tolist(), "gathered": [g.tolist() for g in gathered],
        "grads": [weight.grad.tolist(), unused.grad.tolist()],
    }))
    shutdown()
    """
)


def test_two_process_gloo_run(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = run_torchrun(script, str(tmp_path), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["ctx"] == [0, 2, 0, "gloo", True]
    assert ranks[1]["ctx"] == [1, 2, 1, "gloo", False]
    assert ranks[0]["total"] == ranks[1]["total"] == 3.0
    assert ranks[0]["grads"] == ranks[1]["grads"] == [[[3.0, 3.0], [3.0, 3.0]], [1.0, 1.0, 1.0]]  # summed over ranks
    assert ranks[0]["init"] == ranks[1]["init"]  # shared stream: same model init
    gathered = ranks[0]["gathered"]
    assert gathered == ranks[1]["gathered"] and gathered[0] != gathered[1]  # per-rank data streams differ
    assert (tmp_path / "main.txt").read_text() == "written by rank 0"
    assert proc.stderr.count("log line from rank 0") == 1
    assert "log line from rank 1" not in proc.stderr


def test_single_process_without_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_from_env()
    assert ctx == DistContext() and ctx.is_main and not ctx.is_distributed
    assert is_main_process()
    assert write_on_main(lambda x: x * 2, 21) == 42


def test_partial_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        init_from_env()


def test_rank_seeds_differ_per_rank_and_repeat() -> None:
    seeds = [rank_seed(0, r, "data") for r in range(8)]
    assert len(set(seeds)) == 8
    assert seeds == [rank_seed(0, r, "data") for r in range(8)]
    with pytest.raises(ValueError):
        rank_seed(0, -1)


def test_data_parallel_group_without_a_process_group() -> None:
    from repro_core.distributed import data_parallel_group

    assert data_parallel_group() == (0, 1)
    assert data_parallel_group(False) == (0, 1)
    with pytest.raises(ConfigError, match="torchrun"):
        data_parallel_group(True)
