"""The ntk-permute CLI (repro_core conventions, `analytic`, `complexity`) and the quick reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ntk_permute
from ntk_permute import experiments
from ntk_permute.cli import main
from ntk_permute.reproduction import FIGURE1_K, quick
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction, run_cli


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("ntk-permute", main, tmp_path)


def test_quick_reproduction_reproduces_the_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plotted: list[experiments.Figure1Result] = []
    real_plot = experiments.plot_figure1

    def recording_plot(result: experiments.Figure1Result, path: Path) -> Path:
        plotted.append(result)
        return real_plot(result, path)

    monkeypatch.setattr(experiments, "plot_figure1", recording_plot)
    results = check_reproduction("ntk-permute", quick, tmp_path)
    # Issue #14: Figure 1's left panel (first M against k) showed a single point: it was drawn from k = 10 alone.
    [figure] = plotted
    assert [c.k for c in figure.curves] == list(FIGURE1_K) and len(FIGURE1_K) >= 3
    assert sum(c.first_m is not None for c in figure.curves) >= 2
    assert len(results) >= 20
    # Figure 1 compares one trained pool with the official single-trial first-passage value: it may differ.
    failed = [
        r
        for r in results
        if r.verdict not in (Verdict.REPRODUCED, Verdict.MEASURED)
        and not (r.verdict is Verdict.DIFFERS and r.claim.startswith("Figure 1"))
    ]
    assert not failed, failed
    assert (tmp_path / "ntk-permute-figure1.png").is_file()
    assert {r.our_value for r in results if r.metric == "M" and "ensemble size M" in r.claim} == {944, 152, 284, 46}
    assert ntk_permute.PAPER.startswith("arXiv:")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_analytic_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["analytic", "--k", "8", "--m", "2", "3", "--json"])
    assert isinstance(out, dict)
    assert out["ntk"][0]["mu_on"] == pytest.approx(0.5639386392, abs=1e-9)
    assert out["nngp"][1]["mu_off"] == pytest.approx(-0.0503996584, abs=1e-9)
    assert main(["analytic", "--k", "4", "--kind", "ntk"]) == 0
    captured = capsys.readouterr()
    assert "mu_on" in captured.out and not captured.err  # results on stdout, whatever the format


def test_shared_flags_before_the_subcommand() -> None:
    # `ntk-permute --json analytic --k 4` printed nothing on stdout: the subcommand's --json default overwrote it.
    code, out, err = run_cli(main, ["--json", "analytic", "--k", "4", "--kind", "ntk"])
    assert code == 0 and not err, err
    assert json.loads(out)["ntk"][0]["m"] == 1
    code, out, err = run_cli(main, ["-q", "train", "--k", "3", "--members", "2", "--width", "8", "--steps", "2"])
    assert code == 0 and "mu_on" in out and not err, err  # -q: no progress, no logs


def test_analytic_exhaustive(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["analytic", "--k", "6", "--exhaustive", "--perms", "3", "--json"])
    assert isinstance(out, dict)
    assert out["ntk"]["n_exact"] == [63, 63, 63] and out["nngp"]["all_exact"] is True
    strict = _json(
        capsys, ["analytic", "--k", "6", "--exhaustive", "--eps", "0", "--t", "120", "--kind", "ntk", "--json"]
    )
    assert isinstance(strict, dict) and strict["ntk"]["n_exact"] == [57]  # the 6 training inputs fail


def test_complexity(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["complexity", "--k", "8", "--delta", "0.1", "0.01", "--json"])
    assert isinstance(rows, list)
    sizes = {(r["kind"], r["delta"], r["bound"]): r["M"] for r in rows}
    assert sizes[("ntk", 0.01, "all")] == 944 and sizes[("nngp", 0.01, "all")] == 152
    assert sizes[("ntk", 0.1, "single")] == 284 and sizes[("nngp", 0.1, "single")] == 46


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stderr) of the CLI; argparse's own errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Assert `argv` exits 2 with one error line (after at most a usage line) containing every needle."""
    code, err = _exit(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert 1 <= len(lines) <= 2 and "error:" in lines[-1], err
    for needle in needles:
        assert needle in lines[-1], err
    return lines[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ["analytic", "--k", "0"],
        ["analytic", "--k", "4", "--m", "9"],
        ["analytic", "--k", "4", "--exhaustive", "--perms", "0"],
        ["complexity", "--k", "8", "--delta", "2"],
        ["analytic", "--k", "4", "--w-std", "-1"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(argv, capsys)
    assert code == 2 and "Traceback" not in err and "error:" in err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["complexity", "--k", "8", "--w-std", "0"], "--w-std"),  # was: "no ensemble size up to 1e15"
        (["complexity", "--k", "8", "--w-std", "nan"], "--w-std"),
        (["complexity", "--k", "8", "--b-std", "-1"], "--b-std"),
        (["complexity", "--k", "0"], "--k"),
        (["complexity", "--k", "8", "--delta", "0"], "--delta"),
        (["complexity", "--k", "8", "--delta", "1"], "--delta"),
        (["complexity", "--k", "8", "--delta", "nan"], "--delta"),
        (["complexity", "--k", "8", "--m", "0"], "--m"),
        (["complexity", "--k", "8", "--m", "9", "--bound", "single"], "--m"),
        (["complexity", "--k", "8", "--m", "2", "--bound", "all"], "--m"),
        (["analytic", "--k", "6", "--exhaustive", "--eps", "-1"], "--eps"),  # was accepted
        (["analytic", "--k", "6", "--exhaustive", "--eps", "inf"], "--eps"),
        (["analytic", "--k", "6", "--exhaustive", "--chunk-size", "0"], "--chunk-size"),
        (["analytic", "--k", "-3"], "--k"),
        (["analytic", "--k", "4", "--m", "0"], "--m"),
        (["analytic", "--k", "4", "--t", "-1"], "--t"),
        (["analytic", "--k", "4", "--t", "nan"], "--t"),
        (["analytic", "--k", "4", "--t", "1", "--lr", "0"], "--lr"),
        (["analytic", "--k", "4", "--t", "1", "--lr", "inf"], "--lr"),
        (["analytic", "--k", "4", "--b-std", "inf"], "--b-std"),
        (["train", "--k", "0"], "--k"),
        (["train", "--k", "4", "--members", "0"], "--members"),
        (["train", "--k", "4", "--width", "0"], "--width"),
        (["train", "--k", "4", "--lr", "-1"], "--lr"),
        (["train", "--k", "4", "--lr", "nan"], "--lr"),
        (["train", "--k", "4", "--steps", "0"], "--steps"),
        (["train", "--k", "4", "--member-chunk", "0"], "--member-chunk"),
        (["train", "--k", "4", "--eps", "-1"], "--eps"),
        (["experiment", "figure1", "--k", "5", "--level", "1.5"], "--level"),
        (["experiment", "figure1", "--k", "5", "--level", "nan"], "--level"),
        (["experiment", "figure1", "--k", "5", "--num-tests", "0"], "--num-tests"),
        (["experiment", "figure1", "--k", "5", "--pool", "0"], "--pool"),
        (["experiment", "figure1", "--k", "1"], "--k"),
        (["experiment", "scaling", "--k", "8", "--delta", "2"], "--delta"),
        (["experiment", "scaling", "--k", "1"], "--k"),
        (["experiment", "p-all", "--k", "6", "--draws", "0"], "--draws"),
        (["experiment", "p-all", "--k", "6", "--members", "0"], "--members"),
        (["experiment", "p-all", "--k", "13"], "--k"),
    ],
)
def test_out_of_range_options_are_refused_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(argv, capsys, flag)


@pytest.mark.parametrize(
    ("argv", "limit"),
    [
        (["complexity", "--k", "100000000", "--bound", "all"], "1048576"),  # was: > 60 s with no output
        (["complexity", "--k", "100000000"], "1048576"),
        (["complexity", "--bound", "crude", "--k", "1000000000000"], "1048576"),  # was: numpy ArrayMemoryError
        (["complexity", "--bound", "single", "--k", "8", "100000000"], "1048576"),
        (["analytic", "--k", "100000000"], "100000"),  # was: > 60 s with no output
        (["analytic", "--k", "31", "--exhaustive", "--perms", "1000000"], "30"),
        (["train", "--k", "100000"], "4096"),
        (["experiment", "scaling", "--k", "8", "100000000"], "1048576"),
    ],
)
def test_sizes_beyond_the_limits_are_refused_up_front(
    argv: list[str], limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    k = argv[argv.index("--k") + 1] if argv[argv.index("--k") + 1] != "8" else argv[argv.index("--k") + 2]
    _refused(argv, capsys, "--k", k, limit)  # argparse's range ("[1, 4096]") or the command's limit


def test_analytic_at_huge_k_with_chosen_levels(capsys: pytest.CaptureFixture[str]) -> None:
    # The closed form is O(1) per level: any k works when the levels are given.
    out = _json(capsys, ["analytic", "--k", "100000000", "--m", "2", "--kind", "ntk", "--json"])
    assert isinstance(out, dict) and out["ntk"][0]["m"] == 2 and out["ntk"][0]["mu_on"] > 0


def test_complexity_computes_the_statistics_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default (all three bounds) used to recompute every level's statistics for every level and every
    # candidate M of the single-input search: O(k^2) work (17.7 s at k = 4096). Now once per (k, kind).
    from ntk_permute import complexity

    calls: list[int] = []
    original = complexity.m_form

    def counting(k: int, *args: object, **kwargs: object) -> object:
        calls.append(k)
        return original(k, *args, **kwargs)  # type: ignore[arg-type]

    complexity._statistics.cache_clear()
    monkeypatch.setattr(complexity, "m_form", counting)
    rows = _json(capsys, ["complexity", "--k", "64", "--kind", "ntk", "--delta", "0.1", "0.01", "--json"])
    assert isinstance(rows, list) and len(rows) == 6
    assert {(r["delta"], r["bound"]): r["M"] for r in rows}[(0.01, "all")] == 5805  # spec 6.2
    assert calls == [64]
    complexity._statistics.cache_clear()


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xff\xfe{\x00}\x00", ":1: not a UTF-8"),  # was: the codec's message without the file
        (b"k = 4\n", ":1: not valid JSON"),
        (b'{\n  "k": 4,\n', ":3: not valid JSON"),  # a truncated file: the line where it ends
        (b"[4, 8]", ": expected a JSON object"),
        (b'{"k": 4, "colour": "red"}', ":1 field 'colour': unknown field"),
        (b'{"k": 0}', ":1 field 'k':"),
        (b'{\n  "k": 4,\n  "w_std": "one"\n}', ":3 field 'w_std':"),
        (b'{\n  "k": 4,\n  "width": -1\n}', ":3 field 'width':"),
    ],
)
def test_bad_config_file_is_named(data: bytes, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Bad content is an InputError naming the file, the line and the field.
    path = _write(tmp_path / "config.json", data)
    _refused(["train", "--config", path, "--no-all-inputs"], capsys, path + needle)


def _tiny_train(*extra: str) -> list[str]:
    return ["train", "--k", "3", "--members", "2", "--width", "8", "--steps", "2", "--no-all-inputs", *extra]


def _one_line_exit_2(argv: list[str], *needles: str) -> str:
    """Assert `argv` exits 2 with one line on stderr, nothing on stdout, containing every needle."""
    code, out, err = run_cli(main, argv)
    assert code == 2 and not out and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_unavailable_device_is_refused_before_training(
    device: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `train --device cuda|mps` ended in tracebacks; now the device is checked (and mapped to the backend) first.
    torch = pytest.importorskip("torch")
    index = int(device.partition(":")[2] or 0)
    available = torch.cuda.device_count() > index if device.startswith("cuda") else torch.backends.mps.is_available()
    if available:
        pytest.skip(f"{device} is available here")
    from ntk_permute import training

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train_ensemble", never)
    _one_line_exit_2(_tiny_train("--device", device, "--backend", backend), f"--device {device}", repr(device))


@pytest.mark.parametrize("name", ["figure1", "p-all", "scaling"])
def test_experiment_checks_the_device(name: str) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("cuda is available here")
    _one_line_exit_2(["experiment", name, "--k", "4", "--device", "cuda"], "--device cuda", "'cuda'")


def test_device_from_the_config_file_is_checked(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ntk_permute.training import TrainConfig

    config = tmp_path / "config.json"
    config.write_text(TrainConfig.tiny(k=3, n_members=2, width=8, device="bogus").to_json())
    _one_line_exit_2(["train", "--config", str(config)], f"{config} field 'device'", "'bogus'")
    _one_line_exit_2(_tiny_train("--device", "bogus"), "--device", "'bogus' is not a device")


def test_jax_runs_on_the_requested_cpu() -> None:
    pytest.importorskip("jax")
    code, out, err = run_cli(main, [*_tiny_train("--device", "cpu", "--seed", "3"), "--json"])
    assert code == 0, err
    config = json.loads(out)["config"]
    assert config["device"] == "cpu" and config["seed"] == 3


@pytest.mark.parametrize(
    "argv",
    [
        _tiny_train("--seed", "-1"),
        _tiny_train("--seed", str(2**32)),
        ["analytic", "--k", "4", "--exhaustive", "--seed", "1.5"],
        ["experiment", "p-all", "--k", "4", "--seed", "-1"],
    ],
)
def test_seed_is_range_checked(argv: list[str]) -> None:
    _one_line_exit_2(argv, "--seed", "[0, 4294967295]")


def test_config_seed_is_kept_unless_seed_is_given(tmp_path: Path) -> None:
    # --seed defaulted to 0 and silently replaced the seed of a --config file.
    pytest.importorskip("jax")
    from ntk_permute.training import TrainConfig

    config = tmp_path / "config.json"
    config.write_text(TrainConfig.tiny(k=3, n_members=2, width=8, steps=2, seed=7).to_json())
    for extra, seed in (([], 7), (["--seed", "0"], 0)):
        code, out, err = run_cli(main, ["train", "--config", str(config), "--no-all-inputs", "--json", *extra])
        assert code == 0, err
        assert json.loads(out)["config"]["seed"] == seed


def test_config_k_is_limited_like_the_option(tmp_path: Path) -> None:
    # `train --config` did not apply the 4,096 k-limit to a k taken from the config file.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"k": 5000, "width": 8, "n_members": 2}))
    _one_line_exit_2(["train", "--config", str(config)], f"{config} field 'k' 5000", "limit 4096")
    _one_line_exit_2(["train", "--config", str(config), "--k", "5000"], "--k", "4096")  # the option: argparse


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (_tiny_train("--width", "1000000000", "--members", "100000"), "--members/--width"),
        (_tiny_train("--members", "100000000000"), "--members/--width"),
        (_tiny_train("--width", "100000000000", "--member-chunk", "1"), "--width"),
        (["train", "--k", "2000", "--members", "64", "--width", "8"], "--k/--members"),  # C(k, 2) inputs x M outputs
        (["analytic", "--k", "20", "--exhaustive", "--perms", "10000000000"], "--perms"),
        (["analytic", "--k", "30", "--exhaustive", "--chunk-size", "10000000000"], "--chunk-size"),
        (["experiment", "p-all", "--k", "4", "--draws", "1000000000000000"], "--draws"),
        (["experiment", "figure1", "--k", "4", "--pool", "1000000000", "--width", "8"], "--pool"),
        (["experiment", "figure1", "--k", "4", "--pool", "4", "--num-tests", "100000000000"], "--num-tests"),
    ],
)
def test_runs_too_large_for_the_memory_are_refused_up_front(argv: list[str], option: str) -> None:
    # Very large --width / --members / --perms / ... were accepted and ran out of memory (numpy's ArrayMemoryError,
    # or the machine swapping). The estimate is far beyond any machine here, so the test does not depend on it.
    pytest.importorskip("jax")
    err = _one_line_exit_2(argv, "the run needs an estimated", "available")
    assert option in err.split(": the run needs")[0], err  # the options that make it grow


def test_memory_check_uses_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jax")
    from ntk_permute import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    _one_line_exit_2(_tiny_train(), "more than the 1 kB available")
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    assert run_cli(main, _tiny_train()).code == 0


def test_diverged_training_is_an_error_not_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    # A learning rate far beyond the stable one can make the outputs overflow: refuse instead of printing NaN.
    pytest.importorskip("jax")
    import numpy as np

    from ntk_permute import training

    original = training.train_ensemble

    def diverging(*args: object, **kwargs: object) -> training.TrainedEnsemble:
        ensemble = original(*args, **kwargs)  # type: ignore[arg-type]
        ensemble.residual_[0] = np.nan
        return ensemble

    monkeypatch.setattr(training, "train_ensemble", diverging)
    _one_line_exit_2(_tiny_train("--lr", "3", "-q"), "--lr 3.0: training diverged")
