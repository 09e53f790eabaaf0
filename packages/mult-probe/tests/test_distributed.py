"""Data-parallel training under torchrun: 2 CPU processes (gloo) hold identical weights, equal to one process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from mult_probe.icot import IcotConfig
from mult_probe.model import ModelConfig
from mult_probe.train import TrainConfig, train
from repro_core.errors import ConfigError
from repro_core.testing import run_torchrun

BASE = dict(k=2, model=ModelConfig.tiny(d_model=32, n_ctx=32), batch_size=16, eval_size=20, lr=3e-3, seed=3)
CONFIGS = {
    "aux": TrainConfig(method="aux", steps=4, **BASE),  # type: ignore[arg-type]
    # lambda 0.5 puts 61% of the rows at extra offsets, so the two ranks hold different label counts. No optimizer
    # reset here: a fresh AdamW's first step is sign(g)-like, turning float-order noise in near-zero gradients into
    # +-lr weight differences (the resets are tested in test_icot.py)
    "icot": TrainConfig(
        method="icot",
        steps=6,
        icot=IcotConfig(remove_per_epoch=2, steps_per_epoch=2, smoothing_lambda=0.5, reset_optimizer=False),
        **BASE,  # type: ignore[arg-type]
    ),
}

WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import torch
    from repro_core.distributed import init_from_env, shutdown
    from mult_probe.cli import main
    from mult_probe.train import TrainConfig, train

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    ctx = init_from_env()
    for name, text in json.loads(sys.argv[2]).items():
        losses = []
        result = train(TrainConfig.from_json(text), run_dir=out / name, on_step=lambda s, log: losses.append(log))
        state = dict(result.model.state_dict())
        if result.aux_heads is not None:
            state["aux_heads"] = result.aux_heads.weight.detach()
        torch.save(state, out / f"{name}-rank{ctx.rank}.pt")
        logs = {"loss": [log["loss"] for log in losses], "position": [log["position_loss"] for log in losses]}
        (out / f"{name}-rank{ctx.rank}.json").write_text(json.dumps({**logs, "world": ctx.world_size}))
    # the CLI trains in the running process group; only rank 0 prints its result
    main(["train", "--method", "icot", "--k", "2", "--steps", "2", "--batch-size", "8", "--steps-per-epoch", "2",
          "--eval-size", "10", "--json"])
    shutdown()
    """
)


def _state(result: Any) -> dict[str, torch.Tensor]:
    state = dict(result.model.state_dict())
    if result.aux_heads is not None:
        state["aux_heads"] = result.aux_heads.weight.detach()
    return state


def test_two_processes_match_one(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    payload = json.dumps({name: config.to_json() for name, config in CONFIGS.items()})
    proc = run_torchrun(script, str(tmp_path), payload)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"world_size": 2') == 1, proc.stdout  # rank 0 alone prints the CLI result
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, config in CONFIGS.items():
            states = [torch.load(tmp_path / f"{name}-rank{r}.pt", weights_only=True) for r in (0, 1)]
            for key in states[0]:
                assert torch.equal(states[0][key], states[1][key]), (name, key)  # bit-identical across ranks
            logs = [json.loads((tmp_path / f"{name}-rank{r}.json").read_text()) for r in (0, 1)]
            assert logs[0] == logs[1] and logs[0]["world"] == 2
            single_logs: list[dict[str, Any]] = []
            single = train(config, on_step=lambda s, log, out=single_logs: out.append(log))
            for key, value in _state(single).items():  # same global batches: equal up to float summation order
                torch.testing.assert_close(states[0][key], value, rtol=1e-4, atol=1e-5, msg=f"{name} {key}")
            assert logs[0]["loss"] == pytest.approx([log["loss"] for log in single_logs], rel=1e-5)
            assert logs[0]["position"][-1] == pytest.approx(single_logs[-1]["position_loss"], rel=1e-5)
            assert any(p.name.startswith("ckpt-") for p in (tmp_path / name).iterdir()), "rank 0 checkpoints"
    finally:
        torch.set_num_threads(threads)


def test_distributed_true_needs_a_process_group() -> None:
    with pytest.raises(ConfigError, match="process group"):
        train(CONFIGS["aux"], distributed=True)
