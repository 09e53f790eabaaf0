"""ICoT stepwise internalisation: removal schedule, smoothing, CoT layout, optimizer resets, training, resume."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mult_probe.data import CharTokenizer, cot_length, cot_line, encode_nocot
from mult_probe.icot import (
    CotEvalResult,
    IcotConfig,
    cot_token_ids,
    encode_cot,
    evaluate_cot,
    generate_cot,
    optimizer_reset,
    removal_offsets,
    removed_at,
    scheduled_removal,
    smoothing_distribution,
    steps_per_removed_token,
)
from mult_probe.model import ModelConfig, Transformer
from mult_probe.train import TrainConfig, train
from repro_core.checkpoint import CheckpointManager
from repro_core.errors import ConfigError

# 2x2: 8 CoT tokens; 4 steps per epoch, 2 removals per epoch -> one more token every 2 steps
SMALL = dict(
    method="icot",
    k=2,
    model=ModelConfig.tiny(d_model=32, n_ctx=32),
    batch_size=16,
    eval_size=20,
    lr=3e-3,
    icot=IcotConfig(remove_per_epoch=2, steps_per_epoch=4),
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _deng_counter(n_steps: int, steps_per_epoch: int, config: IcotConfig) -> list[int]:
    """Deng et al.'s stateful loop (src/train.py): the count in force at each step, for the pure function to match."""
    per_token = steps_per_removed_token(steps_per_epoch, config.remove_per_epoch)
    scheduled, counter, out = config.remove_start_from, 0, []
    for step in range(n_steps):
        epoch = step // steps_per_epoch
        if counter == per_token:
            scheduled += 1
            counter = 0
        if epoch >= config.pretrain_epochs:
            counter += 1
        out.append(scheduled)
    return out


def test_paper_schedule_4x4() -> None:
    config = IcotConfig()  # Deng's defaults: 8 per epoch, left, lambda 4, reset
    steps_per_epoch = -(-808_000 // 32)  # 25,250
    per_token = steps_per_removed_token(steps_per_epoch, config.remove_per_epoch)
    assert per_token == 3156  # round(25250 / 8)
    assert [scheduled_removal(s, steps_per_epoch, config) for s in (0, 3155, 3156, 6311, 6312)] == [0, 0, 1, 1, 2]
    assert scheduled_removal(steps_per_epoch, steps_per_epoch, config) == 8  # 8 removed after one epoch
    full = 46 * per_token  # cot_length(4) = 46 tokens: all gone at step 145,176, epoch 5.75
    assert cot_length(4) == 46 and scheduled_removal(full, steps_per_epoch, config) == 46
    assert full / steps_per_epoch == pytest.approx(5.75, abs=0.01)
    resets = [s for s in range(1, full + 3 * per_token) if optimizer_reset(s, steps_per_epoch, config, 46)]
    assert resets == [i * per_token for i in range(1, 47)]  # every increment up to full removal, never after
    assert not optimizer_reset(full + per_token, steps_per_epoch, replace(config, reset_optimizer=True), 46)
    assert not any(optimizer_reset(s, 25_250, replace(config, reset_optimizer=False), 46) for s in resets)


@given(
    steps_per_epoch=st.integers(1, 40),
    remove_per_epoch=st.floats(0.5, 16),
    start=st.integers(0, 3),
    pretrain=st.integers(0, 2),
)
def test_pure_schedule_matches_deng_counter(
    steps_per_epoch: int, remove_per_epoch: float, start: int, pretrain: int
) -> None:
    config = IcotConfig(remove_per_epoch=remove_per_epoch, remove_start_from=start, pretrain_epochs=pretrain)
    if round(steps_per_epoch / remove_per_epoch) == 0:
        return  # Deng removes one per step even in pretraining there; we clamp to >= 1 step (documented)
    n = 6 * steps_per_epoch
    pure = [scheduled_removal(s, steps_per_epoch, config) for s in range(n)]
    assert pure == _deng_counter(n, steps_per_epoch, config)


def test_remove_all_beyond_and_validation() -> None:
    config = IcotConfig(remove_per_epoch=1, remove_all_beyond=3)
    assert [scheduled_removal(s, 1, config) for s in range(5)] == [0, 1, 2, math.inf, math.inf]
    for bad, match in [
        ({"remove_per_epoch": 0.0}, "remove_per_epoch"),
        ({"removal_side": "middle"}, "removal_side"),
        ({"smoothing_lambda": 0.0}, "smoothing_lambda"),
        ({"pretrain_epochs": -1}, "pretrain_epochs"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ]:
        with pytest.raises(ConfigError, match=match):
            IcotConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        TrainConfig(method="icot", k=2, model=ModelConfig.tiny(n_ctx=32))
    with pytest.raises(ConfigError, match="n_ctx"):
        TrainConfig(**{**SMALL, "model": ModelConfig.tiny(d_model=32, n_ctx=16)})  # type: ignore[arg-type]
    config = TrainConfig(**SMALL)  # type: ignore[arg-type]
    assert TrainConfig.from_json(config.to_json()) == config and config.sequence_length == 13 + 8


def test_smoothing_distribution_and_seeded_offsets() -> None:
    probs = smoothing_distribution(4.0)
    assert probs.sum() == pytest.approx(1.0)
    assert probs[0] == pytest.approx(1 - math.exp(-4), abs=1e-12)  # 0.98168
    assert probs[1] == pytest.approx((1 - math.exp(-4)) * math.exp(-4), abs=1e-12)  # 0.01798
    assert smoothing_distribution(None)[0] == 1.0
    draws = np.concatenate([removal_offsets(7, step, 1000, 4.0) for step in range(50)])  # 50,000 offsets
    assert abs(np.mean(draws == 0) - probs[0]) < 0.003  # binomial sd 6e-4
    assert abs(np.mean(draws == 1) - probs[1]) < 0.003
    assert draws.max() <= 4 and draws.min() == 0
    assert np.array_equal(removal_offsets(7, 3, 64, 4.0), removal_offsets(7, 3, 64, 4.0))
    assert not np.array_equal(removal_offsets(7, 3, 64, 4.0), removal_offsets(7, 4, 64, 4.0))
    assert not removal_offsets(7, 3, 64, None).any()


@pytest.mark.parametrize(("k", "l"), [(4, 4), (2, 2), (3, 5), (1, 1)])
def test_cot_tokens_follow_deng_lines(k: int, l: int) -> None:
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.integers(10 ** (k - 1), 10**k, 20), rng.integers(10 ** (l - 1), 10**l, 20)], axis=1)
    tok = CharTokenizer()
    ids = cot_token_ids(pairs, k, l)
    assert ids.shape == (20, cot_length(k, l))
    for row, (a, b) in zip(ids, pairs.tolist(), strict=True):
        cot = cot_line(a, b, k, l).split("||")[1].split(" #### ")[0]
        assert row.tolist() == tok.encode(cot)


def test_encode_cot_layout_and_removal() -> None:
    tok = CharTokenizer()
    pairs = np.array([[2365, 4347], [8331, 5015]])
    full = encode_cot(pairs, 4)
    line = cot_line(2365, 4347, 4)
    source, target = line.split("||")
    cot, answer = target.split(" #### ")
    expected = f"{source} <eos> {cot} <eos> #### {answer} <eos>"
    assert tok.decode(full.input_ids[0]) == expected
    first_eos = 9
    assert (full.labels[:, :first_eos] == -100).all() and full.labels[0, first_eos] == full.input_ids[0, first_eos + 1]
    assert full.input_ids[0, full.predict_positions[0]].tolist()[1:] == tok.encode(answer)[:-1]  # c_{t-1} predicts c_t
    # left removal cuts the first r CoT tokens of each row; rows of different lengths are right-padded
    cut = encode_cot(pairs, 4, remove=np.array([3, 0]))
    assert tok.decode(cut.input_ids[0]).startswith(f"{source} <eos> {' '.join(cot.split()[3:])} <eos>")
    assert cut.input_ids[0, -3:].tolist() == [tok.pad_id] * 3 and (cut.labels[0, -4:] == -100).all()
    assert (cut.input_ids[1] == full.input_ids[1]).all()
    assert cut.predict_positions[0, 0] == full.predict_positions[0, 0] - 3
    right = encode_cot(pairs, 4, remove=2, side="right")
    assert tok.decode(right.input_ids[0]) == f"{source} <eos> {' '.join(cot.split()[:-2])} <eos> #### {answer} <eos>"
    # after full removal (or more) the sequence is the no-CoT layout, token for token
    nocot = encode_nocot(pairs, 4)
    for remove in (46, 60, math.inf):
        gone = encode_cot(pairs, 4, remove=remove)
        assert np.array_equal(gone.input_ids, nocot.input_ids) and np.array_equal(gone.labels, nocot.labels)
        assert np.array_equal(gone.predict_positions[0], nocot.predict_positions)


def test_optimizer_resets_and_training_lowers_loss(tmp_path: Path) -> None:
    config = TrainConfig(steps=24, **SMALL)  # type: ignore[arg-type]
    logs: list[dict[str, Any]] = []
    result = train(config, run_dir=tmp_path, on_step=lambda step, log: logs.append(log))
    # one more token every 2 steps: resets at 0-based steps 2, 4, ..., 16 (counts 1..8), none after full removal
    assert [log["step"] - 1 for log in logs if log["optimizer_reset"]] == list(range(2, 17, 2))
    assert [log["cot_removed"] for log in logs] == [min(s // 2, 8) for s in range(24)]
    final = CheckpointManager(tmp_path).load_latest()
    assert final is not None
    adam_steps = {int(s["step"]) for s in final["optimizer"]["state"].values()}
    assert adam_steps == {24 - 16}  # the last fresh AdamW started at 0-based step 16
    first, last = np.mean([log["lm"] for log in logs[:3]]), np.mean([log["lm"] for log in logs[-3:]])
    assert last < first - 0.3, (first, last)
    assert result.history[-1]["cot_removed"] == 8 and len(result.final.position_loss) == 4
    untrained = train(replace(config, steps=1))
    assert np.mean(result.final.position_loss) < np.mean(untrained.final.position_loss)


class _Killed(Exception):
    pass


def test_icot_resume_after_kill_gives_the_same_weights(tmp_path: Path) -> None:
    small = {**SMALL, "icot": IcotConfig(remove_per_epoch=2)}
    config = TrainConfig(steps=9, checkpoint_every=3, train_size=64, **small)  # type: ignore[arg-type]
    assert config.steps_per_epoch == 4  # ceil(64 / 16)
    whole = train(config)

    def kill(step: int, logs: dict[str, Any]) -> None:
        if step == 8:  # after the checkpoint at step 6 and a reset at step 7 (0-based 6)
            raise _Killed

    with pytest.raises(_Killed):
        train(config, run_dir=tmp_path, on_step=kill)
    resumed = train(config, run_dir=tmp_path)
    assert resumed.resumed_from == 6
    for p, q in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.final == whole.final


class _Copier(Transformer):
    """Stub: at every position, the next token of the reference sequence with `removed` CoT tokens cut (2x2).

    It reads only the operands, so it ignores what it generated; `corrupt` changes the token it emits at one
    position (to test that the answer is scored from the model's own `####` on).
    """

    def __init__(self, removed: float, side: str = "left", corrupt: dict[int, int] | None = None) -> None:
        super().__init__(ModelConfig.tiny(d_model=32, n_ctx=32))
        self.removed, self.side, self.corrupt = removed, side, corrupt or {}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = torch.full((*tokens.shape, 17), -10.0)
        for row, seq in enumerate(tokens.tolist()):
            pair = np.array([[seq[0] + 10 * seq[1], seq[3] + 10 * seq[4]]])
            ref = encode_cot(pair, 2, remove=self.removed, side=self.side).input_ids[0].tolist()  # type: ignore[arg-type]
            for t in range(len(seq)):
                nxt = ref[t + 1] if t + 1 < len(ref) else CharTokenizer().eos_id
                logits[row, t, self.corrupt.get(t + 1, nxt)] = 10.0
        return logits


PAIRS = np.array([[12, 34], [99, 99], [10, 10], [57, 68]])


@pytest.mark.parametrize(("removed", "side"), [(0, "left"), (3, "left"), (5, "right"), (7, "left")])
def test_cot_aware_evaluation_of_a_copying_model_is_perfect(removed: int, side: str) -> None:
    result = evaluate_cot(_Copier(removed, side), PAIRS, 2, removed=removed, side=side, batch_size=3)  # type: ignore[arg-type]
    assert result.exact_match == 1.0 and result.digit_accuracy == [1.0] * 4 and result.n == 4
    assert result.cot_token_accuracy == 1.0 and result.cot_exact_match == 1.0
    assert (result.removed, result.cot_tokens) == (removed, 8 - removed)
    seqs, reference = generate_cot(_Copier(removed, side), PAIRS, 2, removed=removed, side=side)  # type: ignore[arg-type]
    assert np.array_equal(seqs, reference.input_ids[:, :-1])  # stops after the answer, before the final <eos>


def test_cot_aware_evaluation_scores_the_answer_after_the_models_own_cot() -> None:
    tok = CharTokenizer()
    # a wrong CoT token (position 6 is the second CoT token of 2x2): answer still right, CoT diagnostics drop
    wrong_cot = evaluate_cot(_Copier(0, corrupt={6: tok.vocab["+"]}), PAIRS, 2, removed=0)
    assert wrong_cot.exact_match == 1.0 and wrong_cot.cot_exact_match == 0.0
    assert wrong_cot.cot_token_accuracy == pytest.approx(7 / 8)
    # a model still writing the full CoT, scored at 2 removed: CoT too long, but its answer is within the slack
    longer = evaluate_cot(_Copier(0), PAIRS, 2, removed=2)
    assert longer.exact_match == 1.0 and longer.cot_exact_match == 0.0
    assert longer.cot_token_accuracy is not None and longer.cot_token_accuracy < 1.0
    assert evaluate_cot(_Copier(0), PAIRS, 2, removed=2, slack=0).exact_match == 0.0  # no room: answer cut short
    # a model that never writes `####` gets no answer digit
    no_mark = evaluate_cot(_Copier(8, corrupt={7: tok.vocab["+"]}), PAIRS, 2, removed=8)
    assert no_mark.exact_match == 0.0 and no_mark.digit_accuracy == [0.0] * 4
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_cot(_Copier(0), PAIRS, 2, batch_size=0)


@pytest.mark.parametrize("removed", [8, 20, math.inf])
def test_cot_aware_evaluation_after_full_removal_is_the_nocot_layout(removed: float) -> None:
    seqs, _ = generate_cot(_Copier(removed), PAIRS, 2, removed=removed)
    assert np.array_equal(seqs, encode_nocot(PAIRS, 2).input_ids[:, :-1])  # a * b <eos> <eos> #### answer
    result = evaluate_cot(_Copier(removed), PAIRS, 2, removed=removed)
    assert result.exact_match == 1.0 and result.cot_tokens == 0 and result.removed == 8
    assert result.cot_token_accuracy is None and result.cot_exact_match == 1.0


def test_cot_aware_evaluation_is_deterministic_and_restores_train_mode() -> None:
    model = Transformer(ModelConfig.tiny(d_model=32, n_ctx=32), generator=torch.Generator().manual_seed(0))
    model.train()
    pairs = np.random.default_rng(3).integers(10, 100, size=(30, 2))
    first = evaluate_cot(model, pairs, 2, removed=3, batch_size=7)
    assert model.training
    assert evaluate_cot(model, pairs, 2, removed=3, batch_size=7) == first
    assert isinstance(first, CotEvalResult) and first.cot_tokens == 5 and len(first.digit_accuracy) == 4


def test_removed_at_is_the_last_trained_steps_count() -> None:
    config = IcotConfig(remove_per_epoch=2, steps_per_epoch=4)  # one more token every 2 steps
    assert [removed_at(done, 4, config, 8) for done in range(0, 22, 3)] == [0, 1, 2, 4, 5, 7, 8, 8]
    assert removed_at(5, 1, IcotConfig(remove_per_epoch=1, remove_all_beyond=3), 8) == 8  # inf -> the whole CoT


def test_icot_training_reports_cot_aware_and_nocot_scores() -> None:
    config = TrainConfig(steps=6, eval_every=3, **SMALL)  # type: ignore[arg-type]
    result = train(config)
    assert [entry["step"] for entry in result.history] == [3, 6]  # logs are kept at evaluations only
    mid, end = result.history[0]["eval"], result.history[-1]["eval"]
    assert mid["cot_aware"]["removed"] == 1  # the count of 0-based step 2
    assert end["cot_aware"]["removed"] == 2 == result.history[-1]["cot_removed"]
    final = result.final
    assert final.cot_aware is not None and final.cot_aware.n == final.n == 20
    assert len(final.cot_aware.digit_accuracy) == len(final.digit_accuracy) == 4
    assert 0.0 <= final.cot_aware.exact_match <= 1.0 and final.cot_aware.cot_tokens == 6


def test_cli_eval_of_an_icot_run_reports_both_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mult_probe.cli import main
    from repro_core.testing import run_cli

    run = tmp_path / "run"
    argv = ["train", "--method", "icot", "--k", "2", "--steps", "3", "--batch-size", "8", "--eval-size", "6"]
    assert main([*argv, "--steps-per-epoch", "4", "--remove-per-epoch", "2", "--run-dir", str(run), "--json"]) == 0
    capsys.readouterr()
    assert main(["eval", "--run-dir", str(run), "--n", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "icot" and out["cot_aware"]["removed"] == 1  # the count of 0-based step 2
    assert out["cot_aware"]["n"] == out["n"] == 5 and len(out["cot_aware"]["digit_accuracy"]) == 4
    assert main(["eval", "--run-dir", str(run), "--n", "5", "--cot-removed", "8"]) == 0
    out = capsys.readouterr().out  # results on stdout, like --json
    assert "CoT-aware exact match (greedy CoT, 8 CoT tokens removed, 0 left)" in out and "no-CoT layout" in out
    assert run_cli(main, ["eval", "--run-dir", str(run), "--cot-removed", "-1"]).code == 2


def test_position_dynamics_on_the_cot_layout() -> None:
    from mult_probe.train import position_dynamics

    config = TrainConfig(steps=1, **SMALL)  # type: ignore[arg-type]
    model = Transformer(config.model, generator=torch.Generator().manual_seed(0))
    dynamics = position_dynamics(model, PAIRS, config, remove=np.array([0, 3, 8, 2]))
    assert len(dynamics["grad_norm"]) == len(dynamics["position_loss"]) == 4
    assert all(g > 0 for g in dynamics["grad_norm"]) and model.training
