"""Multi-step series: config validation, the all-pairs matrix, the heatmap and the `series` subcommand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bt2_compat.cli import main
from bt2_compat.data import make_synthetic
from bt2_compat.series import SeriesConfig, plot_series, run_series
from bt2_compat.train import TrainConfig
from repro_core.errors import ConfigError
from repro_core.testing import run_cli


def test_config_round_trip_and_validation() -> None:
    config = SeriesConfig(class_steps=(2, 5, 9, 12), method="bct", train=replace(TrainConfig(), epochs=3))
    assert SeriesConfig.from_json(config.to_json()) == config
    for bad in (
        {"class_steps": (5,)},
        {"class_steps": (5, 5)},
        {"class_steps": (0, 3)},
        {"method": "magic"},
        {"metric": "hamming"},
        {"extra_dims": 40},
    ):
        with pytest.raises(ConfigError):
            SeriesConfig(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        SeriesConfig.from_dict({"steps": [1, 2]})


@pytest.mark.parametrize("method", ["bt2", "bct"])
def test_series_matrix(method: str) -> None:
    data = make_synthetic(num_classes=6, per_class=30, seed=3)
    config = SeriesConfig(
        data="synthetic:6",
        class_steps=(2, 4, 6),
        method=method,
        old_hidden=(16,),
        new_hidden=(16,),
        embedding_dim=8,
        extra_dims=2,
        train=replace(TrainConfig(), epochs=2, batch_size=32),
    )
    result = run_series(config, dataset=data)
    assert result.names == ("m0", "m1", "m2")
    width = 12 if method == "bt2" else 8  # BT^2 grows by k per step: 8 -> 10 -> 12
    for metric in ("top1", "top5", "mAP"):
        assert len(result.matrix[metric]) == 3 and all(len(row) == 3 for row in result.matrix[metric])
        assert all(0.0 <= v <= 100.0 for row in result.matrix[metric] for v in row)
    assert set(result.criteria()) == {"m1/m0", "m2/m0", "m2/m1"}
    from bt2_compat.evaluate import embed

    assert embed(result.models["m2"], data.x_test[:3]).shape == (3, width)
    assert json.loads(json.dumps(result.to_dict()))["names"] == ["m0", "m1", "m2"]
    with pytest.raises(ConfigError, match="exceeds"):
        run_series(replace(config, class_steps=(2, 7)), dataset=data)


def _tiny(method: str = "bt2", **overrides: object) -> SeriesConfig:
    base: dict[str, object] = {
        "data": "synthetic:6",
        "class_steps": (2, 4, 6),
        "method": method,
        "old_hidden": (16,),
        "new_hidden": (16,),
        "embedding_dim": 8,
        "extra_dims": 2,
        "train": replace(TrainConfig(), epochs=3, batch_size=32),
    }
    base.update(overrides)
    return SeriesConfig(**base)  # type: ignore[arg-type]


def test_killed_series_resumes_from_the_last_finished_step(tmp_path: Path) -> None:
    data = make_synthetic(num_classes=6, per_class=30, seed=3)
    config = _tiny()
    straight = run_series(config, dataset=data)

    def crash(name: str, epoch: int, loss: float) -> None:
        if name == "m1" and epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_series(config, dataset=data, run_dir=tmp_path, on_epoch_end=crash)
    assert {p.name for p in tmp_path.glob("*.pt")} == {"m0.pt", "m1-prime.pt"}
    seen: list[tuple[str, int]] = []
    resumed = run_series(config, dataset=data, run_dir=tmp_path, on_epoch_end=lambda n, e, _: seen.append((n, e)))
    assert resumed.resumed == ("m0", "m1-prime")
    assert seen[0] == ("m1", 2)  # m1 continues after its last checkpoint (epoch 1)
    assert resumed.matrix == straight.matrix
    for name in straight.names:
        for key, value in straight.models[name].state_dict().items():
            assert torch.equal(value, resumed.models[name].state_dict()[key]), (name, key)
    again = run_series(config, dataset=data, run_dir=tmp_path)  # everything finished: nothing is retrained
    assert again.resumed == ("m0", "m1-prime", "m1", "m2-prime", "m2") and again.matrix == straight.matrix
    with pytest.raises(ConfigError, match="different config"):
        run_series(replace(config, seed=1), dataset=data, run_dir=tmp_path)


def test_resnet18_preset() -> None:
    config = SeriesConfig.resnet18_cifar()
    assert config.backbone == "resnet18" and config.data.startswith("synthetic-images")
    assert (config.embedding_dim, config.extra_dims, config.scale_c) == (128, 32, 2.0)
    assert config.train.augment and config.train.crop_padding == 4
    assert SeriesConfig.from_json(config.to_json()) == config
    assert SeriesConfig.resnet18_cifar(class_steps=(5, 10)).class_steps == (5, 10)
    with pytest.raises(ConfigError, match="image data"):
        run_series(replace(_tiny(), backbone="resnet18"), dataset=make_synthetic(num_classes=6, per_class=5))
    with pytest.raises(ConfigError, match="backbone"):
        SeriesConfig(backbone="vit")


def test_plot_series(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the heatmap uses matplotlib (repro-core[plot])")
    result = {"config": {"method": "bt2"}, "names": ["m0", "m1"], "matrix": {"mAP": [[50.0, 40.0], [55.0, 90.0]]}}
    path = plot_series(result, tmp_path / "plots" / "series.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="metric"):
        plot_series(result, tmp_path / "x.png", metric="top9")


def test_series_cli(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the heatmap uses matplotlib (repro-core[plot])")
    argv = ["series", "--data", "synthetic:6", "--classes", "3", "6", "--epochs", "1"]
    argv += ["--plot", str(tmp_path / "m.png")]
    code, out, _ = run_cli(main, [*argv, "--json"])
    assert code == 0
    result = json.loads(out)
    assert result["names"] == ["m0", "m1"] and len(result["matrix"]["mAP"]) == 2
    assert set(result["criteria"]["mAP"]) == {"m1/m0"}
    assert (tmp_path / "m.png").exists()
    code, out, err = run_cli(main, argv)
    assert code == 0 and "m1/m0 > m0/m0" in out and "query model" in out, err  # the human matrix is a result
    run_dir = ["--run-dir", str(tmp_path / "run"), "--json"]
    code, out, err = run_cli(main, [*argv, *run_dir])
    assert code == 0, err
    first = json.loads(out)
    code, out, err = run_cli(main, [*argv, *run_dir])  # a restarted series loads every finished model
    assert code == 0, err
    assert json.loads(out)["resumed"] == ["m0", "m1-prime", "m1"]
    assert json.loads(out)["matrix"] == first["matrix"]
    code, _, err = run_cli(main, ["series", "--data", "synthetic:6", "--classes", "3", "9", "--epochs", "1"])
    assert code == 2 and "class_steps" in err
    code, _, err = run_cli(
        main, ["series", "--preset", "resnet18-cifar", "--data", "synthetic:6", "--classes", "3", "6"]
    )
    assert code == 2 and "needs image data" in err


def test_series_refuses_vector_data_for_a_resnet_before_creating_the_run_dir(tmp_path: Path) -> None:
    """Issue #13: the backbone was checked after `--run-dir` and its series.json were written."""
    run_dir = tmp_path / "run"
    argv = ["series", "--preset", "resnet18-cifar", "--data", "synthetic:6", "--classes", "3", "6"]
    code, out, err = run_cli(main, [*argv, "--run-dir", str(run_dir)])
    assert code == 2 and not out and "needs image data" in err and len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists()
