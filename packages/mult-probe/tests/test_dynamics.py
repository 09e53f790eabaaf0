"""Training dynamics (issue 15.1): the per-position quantities, the authors' CSV layout, `dynamics plot`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mult_probe.cli import main
from mult_probe.dynamics import (
    COLUMNS,
    gradient_statistics,
    log_from_history,
    read_dynamics_csv,
    write_dynamics_csv,
)
from mult_probe.model import ModelConfig, Transformer
from mult_probe.train import DYNAMICS_CSV, TrainConfig, position_dynamics, sample_pairs, train
from repro_core.errors import InputError
from repro_core.optional import has_module

FIXTURES = Path(__file__).parent / "fixtures"
AUTHORS_LAYOUT = FIXTURES / "authors_layout_grad_probe_log.csv"
SMALL = dict(k=2, model=ModelConfig.tiny(d_model=32, n_ctx=16), batch_size=16, eval_size=20, lr=3e-3)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_gradient_statistics_follow_their_definitions() -> None:
    """Each quantity from the Gram matrix equals its definition computed on the gradient vectors themselves."""
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(5, 40))  # g_t for K = 5 positions
    losses = [2.3, 0.1, 1.0, 0.5, 0.01]
    stats = gradient_statistics(losses, grads @ grads.T)
    total = grads.mean(axis=0)
    for t in range(5):
        rest = grads.sum(axis=0) - grads[t]
        norm_t = np.linalg.norm(grads[t])
        assert stats["grad_norm"][t] == pytest.approx(norm_t)
        assert stats["grad_ratio"][t] == pytest.approx(norm_t / np.linalg.norm(rest))
        assert stats["cos"][t] == pytest.approx(grads[t] @ rest / (norm_t * np.linalg.norm(rest)))
        assert stats["dd"][t] == pytest.approx(grads[t] @ total / np.linalg.norm(total))
    assert stats["grad_norm_total"] == pytest.approx(np.linalg.norm(total))
    assert stats["handle_ratio"] == pytest.approx(np.linalg.norm(grads.sum(0)) ** 2 / (grads**2).sum())
    assert stats["loss_total"] == pytest.approx(np.mean(losses))
    # aligned gradients: handle ratio K, cosines 1; a position without gradient gives NaN ratios, not an error
    same = gradient_statistics([1.0, 1.0], np.ones((2, 2)))
    assert same["handle_ratio"] == pytest.approx(2.0) and same["cos"] == pytest.approx([1.0, 1.0])
    assert np.isnan(gradient_statistics([1.0, 1.0], np.diag([1.0, 0.0]))["cos"]).all()


def test_position_dynamics_gradients_match_autograd() -> None:
    config = TrainConfig(method="sft", steps=1, **SMALL)  # type: ignore[arg-type]
    model = Transformer(config.model, generator=torch.Generator().manual_seed(0))
    pairs = sample_pairs(config, 0, None, set())
    stats = position_dynamics(model, pairs, config)
    assert len(stats["grad_ratio"]) == len(stats["cos"]) == len(stats["dd"]) == 4
    # ||dL/dtheta|| of the mean answer loss, by one direct backward pass
    from mult_probe.data import encode_nocot

    batch = encode_nocot(pairs, 2)
    model.eval()
    logits = model(torch.as_tensor(batch.input_ids))[:, batch.predict_positions]
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), torch.as_tensor(batch.answer))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    direct = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    assert stats["grad_norm_total"] == pytest.approx(direct, rel=1e-5)
    assert stats["loss_total"] == pytest.approx(float(loss.detach()), rel=1e-5)


def test_csv_in_the_authors_layout_round_trips_and_lists_the_last_digit_first(tmp_path: Path) -> None:
    config = TrainConfig(method="aux", steps=4, **SMALL)  # type: ignore[arg-type]
    result = train(config, dynamics_every=2)
    log = log_from_history(result.history)
    path = write_dynamics_csv(log, tmp_path / "dynamics.csv")
    header, first = path.read_text().splitlines()[:2]
    assert header.split(",") == list(COLUMNS)
    losses_in_file = json.loads(first.split('"')[1])  # the loss_per_pos cell
    assert losses_in_file == result.history[0]["dynamics"]["position_loss"][::-1]  # c3, c2, c1, c0
    back = read_dynamics_csv(path)
    assert back.steps.tolist() == [2, 4]
    for column, values in log.per_position.items():
        np.testing.assert_array_equal(back.per_position[column], values)
    for column, values in log.scalars.items():
        np.testing.assert_array_equal(back.scalars[column], values)


def test_reads_the_authors_layout_fixture() -> None:
    log = read_dynamics_csv(AUTHORS_LAYOUT)
    assert log.n_positions == 8 and len(log.steps) == 12 and log.steps[-1] == 624_500
    # spec 6.2 (SFT): c0 at 500, c1 at 1k, c7 at 17.5k, c2 at 81k; c3-c6 never below 0.05
    assert log.first_step_below(0.05) == [500, 1000, 81000, None, None, None, None, 17500]
    assert log.final() == pytest.approx([0, 3.5e-6, 4.4e-4, 2.30, 2.30, 2.22, 1.56, 5.6e-5])
    assert set(log.scalars) == {"loss_total", "grad_norm_total", "handle_ratio"}


def test_lists_written_by_numpy_read_too(tmp_path: Path) -> None:
    path = tmp_path / "numpy.csv"
    path.write_text('step,loss_per_pos,grad_norm_per_pos\n500,"[2.3 0.5 0.01]","[1. 0.2 0.]"\n')
    log = read_dynamics_csv(path)
    assert log.final() == [0.01, 0.5, 2.3] and log.final("grad_norm_per_pos") == [0.0, 0.2, 1.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("step,loss_total\n1,2.0\n", "no 'loss_per_pos' column"),
        ('step,loss_per_pos\n1,"[1, 2]"\n2,"[1, 2, 3]"\n', "log.csv:3 field .loss_per_pos.: 3 positions"),
        ('step,loss_per_pos\n2,"[1, 2]"\n1,"[1, 2]"\n', "log.csv:3 field .step.*must increase"),
        ('step,loss_per_pos\n1,"1, 2"\n', "log.csv:2 .*expected a list"),
        ('step,loss_per_pos\n1,"[a, b]"\n', "not a list of numbers"),
        ("step,loss_per_pos\n", "no rows"),
    ],
)
def test_bad_logs_are_refused_naming_the_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "log.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_dynamics_csv(path)


class _Killed(Exception):
    pass


def test_a_resumed_run_writes_the_same_dynamics_csv(tmp_path: Path) -> None:
    config = TrainConfig(method="sft", steps=6, checkpoint_every=2, **SMALL)  # type: ignore[arg-type]
    train(config, run_dir=tmp_path / "whole", dynamics_every=1)

    def kill(step: int, logs: dict[str, Any]) -> None:
        if step == 5:
            raise _Killed

    with pytest.raises(_Killed):
        train(config, run_dir=tmp_path / "killed", dynamics_every=1, on_step=kill)
    train(config, run_dir=tmp_path / "killed", dynamics_every=1)
    whole = (tmp_path / "whole" / DYNAMICS_CSV).read_text()
    assert whole.count("\n") == 7 and (tmp_path / "killed" / DYNAMICS_CSV).read_text() == whole


def test_cli_train_dynamics_then_plot_beside_the_authors_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--k", "2", "--steps", "4", "--batch-size", "8", "--eval-size", "5", "--run-dir", str(run)]
    assert main([*argv, "--dynamics-every", "2", "-q"]) == 0
    capsys.readouterr()
    assert read_dynamics_csv(run / DYNAMICS_CSV).steps.tolist() == [2, 4]
    out = tmp_path / "dynamics.png"
    plot = ["dynamics", "plot", str(run), "--compare", str(AUTHORS_LAYOUT), "--json"]
    if has_module("matplotlib"):
        plot += ["--out", str(out)]
    assert main(plot) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ours"]["positions"] == 4 and result["ours"]["last_step"] == 4
    assert result["compare"]["first_step_below"] == [500, 1000, 81000, None, None, None, None, 17500]
    if has_module("matplotlib"):
        assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"
    # the same numbers from the checkpoint's history when the CSV is gone
    (run / DYNAMICS_CSV).unlink()
    assert main(["dynamics", "plot", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ours"] == {**result["ours"], "source": "history"}
    # --dynamics-every writes to the run directory: refused without one, before any training
    assert main(["train", "--k", "2", "--steps", "1", "--dynamics-every", "1"]) == 2
    assert "--dynamics-every: needs --run-dir" in capsys.readouterr().err
