"""Trainers: config validation, the auxiliary loss, evaluation metrics, and resume-after-kill equality."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mult_probe.data import encode_nocot
from mult_probe.model import ModelConfig, Transformer
from mult_probe.train import AuxHeads, TrainConfig, evaluate, losses, position_dynamics, sample_pairs, train
from repro_core.errors import ConfigError

SMALL = dict(k=2, model=ModelConfig.tiny(d_model=32, n_ctx=16), batch_size=16, eval_size=20, lr=3e-3)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_config_round_trip_and_validation() -> None:
    config = TrainConfig(method="aux", aux_heads=(1, 3), **SMALL)  # type: ignore[arg-type]
    assert TrainConfig.from_json(config.to_json()) == config
    for bad, match in [
        ({"method": "rl"}, "method"),
        ({"steps": 0}, "steps"),
        ({"aux_heads": (4,)}, "aux_heads"),
        ({"aux_layer": 2}, "aux_layer"),
        ({"lr": 0.0}, "lr"),
        ({"k": 10, "l": 9}, "k \\+ l"),
        ({"aux_target_scale": 0.0}, "aux_target_scale"),
    ]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**{**SMALL, **bad})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_dict({"nope": 1})


def test_batches_are_a_function_of_seed_and_step_and_avoid_held_out() -> None:
    config = TrainConfig(**SMALL)  # type: ignore[arg-type]
    banned = {(a, b) for a in range(10, 40) for b in range(10, 100)}
    first = sample_pairs(config, 5, None, banned)
    assert np.array_equal(first, sample_pairs(config, 5, None, banned))
    assert not np.array_equal(first, sample_pairs(config, 6, None, banned))
    assert not {tuple(p) for p in first.tolist()} & banned


def test_aux_loss_gradients_and_lambda_zero_is_sft() -> None:
    config = TrainConfig(method="aux", **SMALL)  # type: ignore[arg-type]
    model = Transformer(config.model, generator=torch.Generator().manual_seed(0))
    heads = AuxHeads(config.aux_heads, config.model.d_head)
    torch.nn.init.normal_(heads.weight, generator=torch.Generator().manual_seed(1))
    pairs = sample_pairs(config, 0, None, set())
    total, parts = losses(model, heads, pairs, config)
    total.backward()
    assert heads.weight.grad is not None and heads.weight.grad.abs().sum() > 0
    assert model.blocks[-1].attn.W_V.grad is not None and model.blocks[-1].attn.W_V.grad[:2].abs().sum() > 0
    assert float(total.detach()) == pytest.approx(float(parts["lm"] + parts["aux"]))
    # the aux target is c_hat / scale at the c_t tokens, read from the last layer's hook_z
    batch = encode_nocot(pairs, 2)
    _, cache = model.run_with_cache(torch.as_tensor(batch.input_ids), names_filter="blocks.1.attn.hook_z")
    z = cache["blocks.1.attn.hook_z"][:, batch.c_token_positions]
    expected = ((heads(z) - torch.as_tensor(batch.c_hat, dtype=torch.float32)[..., None] / 100.0) ** 2).mean()
    assert float(parts["aux"]) == pytest.approx(float(expected.detach()), rel=1e-5)
    # aux_lambda = 0 trains exactly the SFT weights
    sft = train(TrainConfig(method="sft", steps=3, **SMALL))  # type: ignore[arg-type]
    aux0 = train(TrainConfig(method="aux", aux_lambda=0.0, steps=3, **SMALL))  # type: ignore[arg-type]
    for p, q in zip(sft.model.parameters(), aux0.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_evaluate_perfect_and_wrong_models() -> None:
    pairs = np.array([[12, 34], [99, 99], [10, 10]])
    batch = encode_nocot(pairs, 2)

    class Oracle(Transformer):
        """Predicts the true next token at every position (reads the answer from the operands)."""

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            logits = torch.full((*tokens.shape, 17), -10.0)
            for row, seq in enumerate(tokens.tolist()):
                a = seq[0] + 10 * seq[1]
                b = seq[3] + 10 * seq[4]
                full = encode_nocot(np.array([[a, b]]), 2).input_ids[0].tolist()
                for t in range(len(seq)):
                    logits[row, t, full[t + 1] if t + 1 < len(full) else 15] = 10.0
            return logits

        def generate(self, prompt: torch.Tensor, max_new_tokens: int, **kwargs: Any) -> torch.Tensor:
            """Greedy without a key/value cache: this forward always needs the whole sequence."""
            tokens = prompt
            for _ in range(max_new_tokens):
                tokens = torch.cat([tokens, self.forward(tokens)[:, -1:].argmax(dim=-1)], dim=1)
            return tokens

    oracle = Oracle(ModelConfig.tiny(d_model=32, n_ctx=16))
    result = evaluate(oracle, pairs, 2)
    assert result.exact_match == 1.0 and result.teacher_forced_exact_match == 1.0
    assert result.digit_accuracy == [1.0] * 4 and result.n == 3
    assert max(result.position_loss) < 1e-3
    assert result.cot_aware is None  # only with cot_removed (ICoT models)
    # the CoT-aware evaluation after full removal (8 CoT tokens for 2x2) is the no-CoT layout: perfect too
    both = evaluate(oracle, pairs, 2, cot_removed=8)
    assert both.cot_aware is not None and both.cot_aware.exact_match == 1.0 and both.exact_match == 1.0
    skipped = evaluate(oracle, pairs, 2, cot_removed=0).cot_aware  # it skips the CoT: answer still scored
    assert skipped is not None and skipped.exact_match == 1.0
    assert skipped.cot_token_accuracy == 0.0 and skipped.cot_exact_match == 0.0
    untrained = Transformer(ModelConfig.tiny(d_model=32, n_ctx=16), generator=torch.Generator().manual_seed(0))
    result = evaluate(untrained, pairs, 2)
    assert len(result.digit_accuracy) == 4 and 0.0 <= result.mean_digit_accuracy <= 1.0
    assert batch.answer.shape == (3, 4)


def test_position_dynamics_are_logged_without_changing_the_run() -> None:
    config = TrainConfig(method="aux", steps=4, **SMALL)  # type: ignore[arg-type]
    plain = train(config)
    logged = train(config, dynamics_every=2)
    for p, q in zip(plain.model.parameters(), logged.model.parameters(), strict=True):
        assert torch.equal(p, q)  # dropout off and separate gradients: the run is untouched
    entries = [entry for entry in logged.history if "dynamics" in entry]
    assert [entry["step"] for entry in entries] == [2, 4]
    for entry in entries:
        assert len(entry["dynamics"]["grad_norm"]) == len(entry["dynamics"]["position_loss"]) == 4
        assert all(0.0 < g < float("inf") for g in entry["dynamics"]["grad_norm"])
    # the per-position losses are those of `losses` with dropout off
    model = Transformer(config.model, generator=torch.Generator().manual_seed(0))
    pairs = sample_pairs(config, 0, None, set())
    dynamics = position_dynamics(model, pairs, config)
    model.eval()
    _, parts = losses(model, None, pairs, config)
    assert dynamics["position_loss"] == pytest.approx(parts["position_loss"].tolist(), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ConfigError, match="dynamics_every"):
        train(config, dynamics_every=-1)


class _Killed(Exception):
    pass


def test_resume_after_kill_gives_the_same_weights(tmp_path: Path) -> None:
    config = TrainConfig(method="aux", steps=6, checkpoint_every=2, train_size=200, **SMALL)  # type: ignore[arg-type]
    whole = train(config)

    def kill(step: int, logs: dict[str, Any]) -> None:
        if step == 5:  # after the checkpoint at step 4, before the end
            raise _Killed

    with pytest.raises(_Killed):
        train(config, run_dir=tmp_path, on_step=kill)
    resumed = train(config, run_dir=tmp_path)
    assert resumed.resumed_from == 4
    for p, q in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.aux_heads is not None and whole.aux_heads is not None
    assert torch.equal(whole.aux_heads.weight, resumed.aux_heads.weight)
    assert resumed.final == whole.final
    with pytest.raises(ConfigError, match="different method"):
        train(TrainConfig(method="sft", steps=6, **SMALL), run_dir=tmp_path)  # type: ignore[arg-type]


def test_a_diverged_run_stops_with_an_error_instead_of_reporting_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mult_probe.train as train_module

    real_losses = train_module.losses

    def nan_from_step_two(*args: Any, **kwargs: Any) -> Any:
        total, parts = real_losses(*args, **kwargs)
        calls.append(1)
        return (total * float("nan") if len(calls) >= 2 else total), parts

    calls: list[int] = []
    monkeypatch.setattr(train_module, "losses", nan_from_step_two)
    config = TrainConfig(steps=4, checkpoint_every=1, **SMALL)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="loss became nan at step 2"):
        train(config, run_dir=tmp_path)
    assert [p.name for p in tmp_path.glob("ckpt-*.pt")] == ["ckpt-000000001.pt"]  # no checkpoint of NaN weights


def test_gpu_script_smoke_mode(tmp_path: Path) -> None:
    """The prepared GPU check runs end to end on the CPU in seconds (`--smoke`) and writes its JSON."""
    import importlib.util
    import json

    path = Path(__file__).parents[1] / "benchmarks" / "gpu_4x4_sft_vs_aux.py"
    spec = importlib.util.spec_from_file_location("gpu_4x4_sft_vs_aux", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    info = module.main(["--out", str(tmp_path), "--smoke"])  # sets one thread; the fixture restores the count
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["steps"] == info["steps"] == 4 and saved["calibration"]["aux"]["steps"] == 2
    for name in ("sft", "aux"):
        run = saved["runs"][name]
        assert run["steps"] == 4 and len(run["eval_position_loss"]) == 4 and run["curve"][-1]["step"] == 4
    assert saved["summary"]["paper_at_50k"] == {"aux_c3": 0.64, "sft_c3": 2.33}


def test_data_parallel_gradients_are_summed_by_repro_core() -> None:
    """The flat all-reduce lives once, in repro-core (issue #14); `tests/test_distributed.py` runs it under torchrun."""
    import mult_probe.train
    import repro_core.distributed

    assert mult_probe.train.all_reduce_gradients is repro_core.distributed.all_reduce_gradients
    assert not hasattr(mult_probe.train, "_all_reduce_gradients")


def _same_weights(a: Any, b: Any) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))


def test_a_finished_run_grows_to_more_steps_bit_identically(tmp_path: Path) -> None:
    """Issue 15.4: 3 steps, then resumed with steps=6, ends with the weights of a 6-step run (aux and icot)."""
    from mult_probe.icot import IcotConfig

    icot = IcotConfig(remove_per_epoch=2, steps_per_epoch=2)  # a removal and an optimizer reset after step 3
    for name, config in [
        ("aux", TrainConfig(method="aux", steps=6, train_size=200, **SMALL)),  # type: ignore[arg-type]
        (
            "icot",
            TrainConfig(
                method="icot", steps=6, **{**SMALL, "model": ModelConfig.tiny(d_model=32, n_ctx=40)}, icot=icot
            ),
        ),  # type: ignore[arg-type]
    ]:
        whole = train(config)
        run_dir = tmp_path / name
        short = train(dataclasses.replace(config, steps=3), run_dir=run_dir)
        assert short.resumed_from is None
        grown = train(dataclasses.replace(config, eval_every=2), run_dir=run_dir)  # eval_every may change too
        assert grown.resumed_from == 3 and _same_weights(whole, grown), name
        assert grown.final == whole.final
        with pytest.raises(ConfigError, match="already trained 6 steps"):
            train(dataclasses.replace(config, steps=5), run_dir=run_dir)
    with pytest.raises(ConfigError, match="different lr"):
        train(dataclasses.replace(config, lr=1e-2), run_dir=run_dir)
    with pytest.raises(ConfigError, match="other held-out or excluded pairs"):
        train(config, run_dir=run_dir, exclude=[(12, 34)])


def test_weights_that_turn_non_finite_are_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15.6: an update that leaves NaN weights stops the run before the checkpoint; the last good one stays."""
    real_step = torch.optim.AdamW.step
    calls: list[int] = []

    def poison_third_update(self: torch.optim.AdamW, *args: Any, **kwargs: Any) -> Any:
        out = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", poison_third_update)
    config = TrainConfig(steps=4, checkpoint_every=1, **SMALL)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"weights became NaN or infinite by step 3.*ckpt-000000002\.pt \(step 2\)"):
        train(config, run_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == ["ckpt-000000001.pt", "ckpt-000000002.pt"]
