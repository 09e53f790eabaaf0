"""CLI and reproduction conventions (repro_core.testing), the quick reproduction's claims, and the subcommands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bt2_compat
from bt2_compat.cli import main
from bt2_compat.io import load_model
from bt2_compat.reproduction import quick
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction, run_cli

pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")


def test_cli_conventions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conventions only: a 2-epoch experiment stands in for the 60-epoch one (the claims are tested below)."""
    from dataclasses import replace

    from bt2_compat import reproduction
    from bt2_compat.experiment import ExperimentConfig

    def short(seed: int) -> ExperimentConfig:
        config = ExperimentConfig.digits(seed=seed)
        return replace(config, train=replace(config.train, epochs=2))

    monkeypatch.setattr(reproduction, "_experiment_config", short)
    check_package_cli("bt2-compat", main, tmp_path)


def test_quick_reproduction_measures_the_claims(tmp_path: Path) -> None:
    results = check_reproduction("bt2-compat", quick, tmp_path)
    assert all(r.verdict is not Verdict.PENDING for r in results)
    by_claim = {r.claim.split(" (")[0]: r for r in results}
    for claim in (
        "bt2: compatibility criterion M(bt2/old) > M(old/old) on mAP",
        "bt2: compatibility criterion M(bt2/old) > M(old/old) on top-1",
        "independent: compatibility criterion M(independent/old) > M(old/old) on mAP",
    ):
        assert by_claim[claim].verdict is Verdict.REPRODUCED, by_claim[claim]
    keeps = next(r for r in results if r.claim.startswith("BT^2 keeps"))
    assert keeps.verdict is Verdict.REPRODUCED, keeps
    assert bt2_compat.PAPER.startswith("arXiv:")


def test_train_and_evaluate_subcommands(tmp_path: Path) -> None:
    quick_opts = ["--epochs", "2", "--json", "-q"]
    old, ind, bt2 = tmp_path / "old.pt", tmp_path / "ind.pt", tmp_path / "bt2.pt"
    code, out, err = run_cli(main, ["train-old", "--out", str(old), "--hidden", "32", *quick_opts])
    assert code == 0, err
    assert json.loads(out)["old_classes"] == 5
    code, _, err = run_cli(
        main, ["train-new", "--method", "independent", "--out", str(ind), "--hidden", "32", *quick_opts]
    )
    assert code == 0, err
    code, out, err = run_cli(
        main,
        [
            "train-new",
            "--method",
            "bt2",
            "--old",
            str(old),
            "--new-prime",
            str(ind),
            "--out",
            str(bt2),
            "--hidden",
            "32",
            "--run-dir",
            str(tmp_path / "run"),
            *quick_opts,
        ],
    )
    assert code == 0, err
    model, config, meta = load_model(bt2)
    assert config.kind == "bt2" and meta["method"] == "bt2" and model.embedding_dim == 40
    code, out, err = run_cli(main, ["evaluate", "--query", str(bt2), "--gallery", str(old), "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["dims"] == {"query": 40, "gallery": 32}
    assert set(result["cells"]) == {"gallery/gallery", "query/gallery", "query/query"}
    assert set(result["criterion"]) == {"top1", "top5", "mAP"}
    code, out, err = run_cli(main, ["evaluate", "--query", str(bt2), "--gallery", str(old)])
    assert code == 0 and "criterion" in out and "criterion" not in err  # the human table is a result: stdout


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = run_cli(main, ["evaluate", "--query", str(tmp_path / "missing.pt"), "--gallery", "x.pt"])
    assert code == 2 and "Traceback" not in err and "no such file" in err
    code, _, err = run_cli(main, ["train-new", "--method", "bt2", "--out", str(tmp_path / "m.pt"), "--epochs", "1"])
    assert code == 2 and "--old" in err
    not_a_model = tmp_path / "bad.pt"
    not_a_model.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(main, ["evaluate", "--query", str(not_a_model), "--gallery", str(not_a_model)])
    assert code == 2 and "Traceback" not in err
    code, _, err = run_cli(main, ["train", "--data", "cifar", "--epochs", "1"])
    assert code == 2 and "data" in err


# Issue #13: bad combinations of models, data and options are refused up front, in one line naming the culprit.


def _model_file(
    path: Path,
    *,
    data: str | None = "digits",
    data_seed: int = 0,
    meta: dict | None = None,
    zero: bool = False,
    nan: bool = False,
    **arch: object,
) -> Path:
    """A model file without training (init weights); `data` records that data set's identity, None none."""
    import torch

    from bt2_compat.data import load_dataset
    from bt2_compat.io import save_model
    from bt2_compat.models import ModelConfig, build_model

    config = ModelConfig(**{"hidden": (8,), **arch})  # type: ignore[arg-type]
    model = build_model(config)
    layers = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    last = layers[-1]
    with torch.no_grad():
        if zero:  # the final ReLU then emits zeros: every embedding is a zero vector
            last.weight.zero_()
            last.bias.fill_(-1.0)
        if nan:
            last.bias.fill_(float("nan"))
    dataset = load_dataset(data, seed=data_seed) if data is not None else None
    return save_model(path, model, config, meta or {}, dataset=dataset)


def _refuses_training(monkeypatch: pytest.MonkeyPatch) -> None:
    from bt2_compat import cli

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the input was refused")

    monkeypatch.setattr(cli, "train_model", no_training)


def test_model_input_size_must_match_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _refuses_training(monkeypatch)
    narrow = _model_file(tmp_path / "narrow.pt", in_features=32, data=None)
    good = _model_file(tmp_path / "good.pt")
    code, _, err = run_cli(main, ["evaluate", "--query", str(narrow), "--gallery", str(good)])
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(narrow) in err and "32 features" in err and "64 features" in err and "--query" in err
    code, _, err = run_cli(main, ["evaluate", "--query", str(good), "--gallery", str(narrow)])
    assert code == 2 and "--gallery" in err and "32 features" in err
    out = str(tmp_path / "new.pt")
    code, _, err = run_cli(main, ["train-new", "--method", "l2", "--old", str(narrow), "--out", out, "--epochs", "1"])
    assert code == 2 and str(narrow) in err and "--old model takes inputs of 32 features" in err, err
    resnet = _model_file(tmp_path / "resnet.pt", backbone="resnet18", width=4, data=None)
    code, _, err = run_cli(main, ["evaluate", "--query", str(resnet), "--gallery", str(good)])
    assert code == 2 and "takes images of 3 channels" in err and "vectors of 64 features" in err, err


@pytest.mark.parametrize(
    ("command", "value"), [("train-old", "11"), ("train-old", "1"), ("train-old", "10"), ("train", "1")]
)
def test_old_classes_must_leave_old_and_new_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, value: str
) -> None:
    from bt2_compat import experiment

    _refuses_training(monkeypatch)
    monkeypatch.setattr(experiment, "train_model", lambda *a, **k: pytest.fail("trained"))
    argv = [command, "--old-classes", value, "--epochs", "1"]
    code, _, err = run_cli(main, [*argv, "--out", str(tmp_path / "old.pt")] if command == "train-old" else argv)
    assert code == 2 and "--old-classes" in err and len(err.strip().splitlines()) == 1, err
    if value == "1":  # below 2 on any data: refused by the option's type, at parse time
        assert "expected an integer >= 2" in err, err
    else:
        assert "2..9" in err and "10-class data digits" in err, err
    assert not (tmp_path / "old.pt").exists()


def test_models_from_other_data_sets_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bt2_compat.data import load_dataset

    digits = _model_file(tmp_path / "digits.pt")
    synthetic = _model_file(tmp_path / "synthetic.pt", data="synthetic:10")  # 64 features, 10 classes too
    code, out, err = run_cli(main, ["evaluate", "--query", str(digits), "--gallery", str(digits), "--json"])
    assert code == 0, err
    code, _, err = run_cli(main, ["evaluate", "--query", str(digits), "--gallery", str(synthetic)])
    assert code == 2 and str(synthetic) in err and "--gallery" in err and "'synthetic:10'" in err, err
    assert "not on 'digits'" in err and len(err.strip().splitlines()) == 1
    data = ["--data", "synthetic:10", "--data-seed", "1"]  # the same generator, another seed: another data set
    code, _, err = run_cli(main, ["evaluate", "--query", str(synthetic), "--gallery", str(synthetic), *data])
    assert code == 2 and "fingerprint" in err, err
    _refuses_training(monkeypatch)
    out = str(tmp_path / "new.pt")
    code, _, err = run_cli(
        main, ["train-new", "--method", "bct", "--old", str(synthetic), "--out", out, "--epochs", "1"]
    )
    assert code == 2 and "--old model was trained on data set 'synthetic:10'" in err, err
    # files written before the identity was recorded still load: unknown data set, with a warning
    legacy = _model_file(tmp_path / "legacy.pt", data=None)
    code, _, err = run_cli(main, ["evaluate", "--query", str(legacy), "--gallery", str(digits), "--json"])
    assert code == 0 and "records no data-set identity" in err, err
    twenty = _model_file(tmp_path / "twenty.pt", data=None, num_classes=20)  # still refused by class count
    code, _, err = run_cli(main, ["evaluate", "--query", str(twenty), "--gallery", str(digits)])
    assert code == 2 and "20-class data" in err, err
    assert load_dataset("digits").fingerprint == load_model(digits)[2]["dataset"]["fingerprint"]
    # generated data of the same name and seed whose values differ in the last bits (another numpy build): a warning
    identity = {**load_dataset("synthetic:10").identity(), "fingerprint": "0" * 64}
    drifted = _model_file(tmp_path / "drifted.pt", data=None, meta={"dataset": identity})
    code, _, err = run_cli(
        main, ["evaluate", "--query", str(drifted), "--gallery", str(synthetic), "--data", "synthetic:10"]
    )
    assert code == 0 and "regenerating it here gives other values" in err, err
    identity["name"] = "digits"
    other = _model_file(tmp_path / "other.pt", data=None, meta={"dataset": identity})
    code, _, err = run_cli(
        main, ["evaluate", "--query", str(other), "--gallery", str(synthetic), "--data", "synthetic:10"]
    )
    assert code == 2 and "trained on data set 'digits'" in err, err


def test_cli_trained_models_record_their_data_set(tmp_path: Path) -> None:
    from bt2_compat.data import load_dataset

    old = tmp_path / "old.pt"
    code, _, err = run_cli(
        main, ["train-old", "--out", str(old), "--hidden", "8", "--epochs", "1", "--data", "synthetic:6"]
    )
    assert code == 0, err
    identity = load_model(old)[2]["dataset"]
    assert identity == load_dataset("synthetic:6").identity() and identity["num_classes"] == 6


def test_new_prime_must_be_an_independent_new_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _refuses_training(monkeypatch)
    old = _model_file(tmp_path / "old.pt", meta={"role": "old", "method": "independent", "old_classes": 5})
    base = ["train-new", "--method", "bt2", "--old", str(old), "--out", str(tmp_path / "bt2.pt"), "--epochs", "1"]
    code, _, err = run_cli(main, [*base, "--new-prime", str(old)])
    assert code == 2 and str(old) in err and "--new-prime is an old model" in err and "below 5" in err, err
    bct = _model_file(tmp_path / "bct.pt", meta={"role": "new", "method": "bct"})
    code, _, err = run_cli(main, [*base, "--new-prime", str(bct)])
    assert code == 2 and "--new-prime is a bct model" in err, err
    narrow = _model_file(tmp_path / "narrow.pt", embedding_dim=16, meta={"role": "new", "method": "independent"})
    code, _, err = run_cli(main, [*base, "--new-prime", str(narrow)])
    assert code == 2 and "embedding dim 16" in err and "--embedding-dim) is 32" in err, err


def test_evaluate_refuses_nan_and_zero_embeddings(tmp_path: Path) -> None:
    good = _model_file(tmp_path / "good.pt")
    nan = _model_file(tmp_path / "nan.pt", nan=True)
    code, _, err = run_cli(main, ["evaluate", "--query", str(nan), "--gallery", str(good)])
    assert code == 2 and f"--query {nan}" in err and "539 of 539 embeddings contain NaN" in err, err
    assert "scores contains NaN" not in err
    zero = _model_file(tmp_path / "zero.pt", zero=True)
    code, _, err = run_cli(main, ["evaluate", "--query", str(good), "--gallery", str(zero)])
    assert code == 2 and f"--gallery {zero}" in err and "539 of 539 embeddings are zero vectors" in err, err
    code, _, err = run_cli(
        main, ["evaluate", "--query", str(good), "--gallery", str(zero), "--metric", "dot", "--json"]
    )
    assert code == 0, err


def test_evaluate_ties_and_cosine_l1_options(tmp_path: Path) -> None:
    code, out, err = run_cli(main, ["evaluate", "--help"])
    assert code == 0
    text = " ".join((out + err).split())
    assert "--ties" in text and "pessimistic" in text and "correct match tied with wrong ones ranks after them" in text
    assert "cosine-l1" in text and "L1 norm" in text
    zero = _model_file(tmp_path / "zero.pt", zero=True)  # every score ties under dot
    top1 = {}
    for ties in ("pessimistic", "optimistic"):
        argv = ["evaluate", "--query", str(zero), "--gallery", str(zero), "--metric", "dot", "--ties", ties]
        code, out, err = run_cli(main, [*argv, "--json"])
        assert code == 0, err
        result = json.loads(out)
        assert result["ties"] == ties
        top1[ties] = result["cells"]["gallery/gallery"]["top1"]
    assert top1 == {"pessimistic": 0.0, "optimistic": 100.0}
    good = _model_file(tmp_path / "good.pt")
    code, out, err = run_cli(
        main, ["evaluate", "--query", str(good), "--gallery", str(good), "--metric", "cosine-l1", "--json"]
    )
    assert code == 0 and json.loads(out)["metric"] == "cosine-l1", err


def test_series_plot_without_matplotlib_fails_before_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bt2_compat import cli

    real = cli.has_module
    monkeypatch.setattr(cli, "has_module", lambda name: False if name == "matplotlib" else real(name))
    monkeypatch.setattr(cli, "run_series", lambda *a, **k: pytest.fail("trained the series before checking --plot"))
    argv = ["series", "--data", "synthetic:6", "--classes", "3", "6", "--epochs", "1"]
    code, _, err = run_cli(main, [*argv, "--plot", str(tmp_path / "m.png")])
    assert code == 2 and "matplotlib" in err and "repro-core[plot]" in err and "--plot" in err, err
    assert not (tmp_path / "m.png").exists()


# Issue #13, the rest: devices, model files that are not checkpoints, results on stdout, -q.


def _device_case(command: str, tmp_path: Path) -> list[str]:
    """A valid command line without --device (model files with init weights, never trained)."""
    good = str(_model_file(tmp_path / "good.pt"))
    return {
        "train-old": ["train-old", "--out", str(tmp_path / "out.pt"), "--epochs", "1"],
        "train-new": ["train-new", "--method", "independent", "--out", str(tmp_path / "out.pt"), "--epochs", "1"],
        "evaluate": ["evaluate", "--query", good, "--gallery", good],
        "train": ["train", "--epochs", "1", "--methods", "independent"],
        "series": ["series", "--classes", "3", "6", "--epochs", "1", "--run-dir", str(tmp_path / "run")],
    }[command]


@pytest.mark.parametrize("command", ["train-old", "train-new", "evaluate", "train", "series"])
def test_unavailable_device_is_refused_before_any_work(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--device cuda` without CUDA ended in a traceback after the data was loaded; now one line, exit 2, first."""
    import torch

    from bt2_compat import cli

    argv = _device_case(command, tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cli, "load_dataset", lambda *a, **k: pytest.fail("loaded the data before checking --device"))
    monkeypatch.setattr(cli, "run_series", lambda *a, **k: pytest.fail("ran the series before checking --device"))
    code, out, err = run_cli(main, [*argv, "--device", "cuda"])
    assert code == 2 and not out and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"bt2-compat: error: {err.strip().split('error: ', 1)[1]}"], err
    assert "'cuda' requested but CUDA is not available" in err
    code, out, err = run_cli(main, [*argv, "--device", "bogus"])
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "'bogus' is not a device" in err, err
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "run").exists()


def test_seeds_are_range_checked(tmp_path: Path) -> None:
    """--seed, --data-seed and --seeds were plain ints, refused (if at all) only after the data was loaded, by a
    library message that named no option; now the option's type states the range, at parse time."""
    out = str(tmp_path / "m.pt")
    for argv in (
        ["train-old", "--out", out, "--seed", "-1"],
        ["train-new", "--method", "independent", "--out", out, "--data-seed", str(2**32)],
        ["train", "--seeds", "0", "-1"],
        ["series", "--seed", str(2**32)],
    ):
        code, stdout, err = run_cli(main, argv)
        assert code == 2 and not stdout and len(err.strip().splitlines()) == 1 and "2**32" not in err, err
        assert "out of range" in err and "4294967295" in err, err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty file"), (b"caf\xe9 \xff\xfe\n", "not a bt2-compat model file"), (b"\x00\x89PNG", "starts with")],
)
def test_model_files_that_are_not_checkpoints_are_one_line(tmp_path: Path, content: bytes, words: str) -> None:
    """An empty --old/--query file gave an IndexError traceback (torch's error had an empty message)."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    good = str(_model_file(tmp_path / "good.pt"))
    for argv in (
        ["evaluate", "--query", str(bad), "--gallery", good],
        ["train-new", "--method", "l2", "--old", str(bad), "--out", str(tmp_path / "m.pt"), "--epochs", "1"],
    ):
        code, out, err = run_cli(main, argv)
        assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and str(bad) in err and words in err, err
    assert not (tmp_path / "m.pt").exists()


def test_results_go_to_stdout_and_quiet_leaves_stderr_empty(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    code, out, err = run_cli(main, ["train-old", "--out", str(old), "--hidden", "8", "--epochs", "1", "-q"])
    assert code == 0 and not err, err
    assert f"old model (independent) written to {old}" in out and "final loss" in out
    legacy = str(_model_file(tmp_path / "legacy.pt", data=None))  # logs a warning without -q
    code, out, err = run_cli(main, ["evaluate", "--query", legacy, "--gallery", str(old)])
    assert code == 0 and "criterion M(query/gallery)" in out and "records no data-set identity" in err
    assert "criterion" not in err
    code, out, err = run_cli(main, ["-q", "evaluate", "--query", legacy, "--gallery", str(old)])
    assert code == 0 and "criterion M(query/gallery)" in out and not err, err


def test_evaluate_shows_progress_of_embedding_and_retrieval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding and leave-one-out retrieval (minutes on CIFAR-size data) report progress through repro-core."""
    from bt2_compat import evaluate

    real, bars = evaluate.progress, []

    def recording(*args: object, **kwargs: object) -> object:
        bars.append((kwargs.get("desc"), kwargs.get("disable")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate, "progress", recording)
    good = str(_model_file(tmp_path / "good.pt"))
    code, _, err = run_cli(main, ["evaluate", "--query", good, "--gallery", good])
    assert code == 0, err
    assert ("embed", None) in bars and ("retrieval", None) in bars, bars  # None: shown unless -q
