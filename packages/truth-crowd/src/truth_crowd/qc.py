"""Quality control: the paper's checks (Crowd_Frame's, spec 2.4 and 7.3) and user-defined ones, composable.

Each check looks at a `CrowdData` and returns a `CheckResult`: a boolean pass mask at its level (one entry per
judgment row, or per worker) and a reason for every failure. `run_qc` runs several, lifts judgment failures to
their workers, and gives a summary with pass/fail counts per check, the failing workers and judgments with their
reasons, and the masks to filter with. Nothing is removed from the data: filtering is the caller's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from truth_crowd.io import CrowdData

__all__ = [
    "CheckResult",
    "CompletenessCheck",
    "CustomCheck",
    "GoldCheck",
    "QCReport",
    "TimeCheck",
    "TriesCheck",
    "UrlDomainCheck",
    "default_checks",
    "run_qc",
]

Level = Literal["judgment", "worker"]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes:
        name: the check's name.
        level: `judgment` (mask aligned with `data.judgments` rows) or `worker` (indexed by worker id).
        passed: boolean Series, True where the unit passes.
        reasons: Series of strings for the failing units only (same index as the failing entries of `passed`).
    """

    name: str
    level: Level
    passed: pd.Series
    reasons: pd.Series


def _result(name: str, level: Level, passed: pd.Series, reasons: pd.Series) -> CheckResult:
    passed = passed.astype(bool)
    return CheckResult(name=name, level=level, passed=passed, reasons=reasons[~passed].astype(str))


@dataclass(frozen=True)
class CompletenessCheck:
    """Every item answered and, when `require_url`, an evidence URL given (Crowd_Frame's form validity)."""

    items: Sequence[str] | None = None
    require_url: bool = True
    name: str = "completeness"

    def __call__(self, data: CrowdData) -> CheckResult:
        j = data.judgments
        items = list(self.items) if self.items is not None else list(data.items)
        missing = j[items].isna()
        if self.require_url and "evidence_url" in j.columns:
            url = j["evidence_url"].astype("string")
            no_url = url.isna() | (url.str.strip() == "")
            missing = missing.assign(evidence_url=no_url.fillna(True).to_numpy(dtype=bool))
        columns = np.asarray(missing.columns)
        matrix = missing.to_numpy(dtype=bool)
        reasons = pd.Series(["missing " + ", ".join(columns[row]) for row in matrix], index=j.index)
        return _result(self.name, "judgment", pd.Series(~matrix.any(axis=1), index=j.index), reasons)


@dataclass(frozen=True)
class GoldCheck:
    """The worker's `item` value for the `low` gold item must be lower than for `high` (strict: ties fail)."""

    low: str = "LOW"
    high: str = "HIGH"
    item: str = "overall_truthfulness"
    strict: bool = True
    name: str = "gold"

    def __call__(self, data: CrowdData) -> CheckResult:
        j = data.judgments
        workers = pd.Index(j["worker_id"].unique())
        value = j.set_index(["statement_id", "worker_id"])[self.item]
        lo = (
            value.xs(self.low, level="statement_id").reindex(workers).astype("Float64")
            if (self.low in set(j["statement_id"]))
            else pd.Series(pd.NA, index=workers, dtype="Float64")
        )
        hi = (
            value.xs(self.high, level="statement_id").reindex(workers).astype("Float64")
            if (self.high in set(j["statement_id"]))
            else pd.Series(pd.NA, index=workers, dtype="Float64")
        )
        ok = (lo < hi) if self.strict else (lo <= hi)
        passed = ok.fillna(False).astype(bool)
        op = "<" if self.strict else "<="
        reasons = pd.Series(
            [
                f"no {self.low}/{self.high} answer"
                if pd.isna(a) or pd.isna(b)
                else f"{self.item}: {self.low} = {int(a) if float(a).is_integer() else a} not {op} "
                f"{self.high} = {int(b) if float(b).is_integer() else b}"
                for a, b in zip(lo, hi, strict=True)
            ],
            index=workers,
        )
        return _result(self.name, "worker", passed, reasons)


@dataclass(frozen=True)
class TimeCheck:
    """Time on every statement (and, with `include_questionnaires`, every questionnaire) must be >= `min_seconds`.

    Crowd_Frame's rule is per worker: one fast item fails the whole try. A missing time (2 in the IPM data) counts
    as passing unless `missing="fail"`.
    """

    min_seconds: float = 2.0
    include_questionnaires: bool = True
    missing: Literal["pass", "fail"] = "pass"
    name: str = "time"

    def __post_init__(self) -> None:
        if not self.min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0, got {self.min_seconds}")
        if self.missing not in ("pass", "fail"):
            raise ValueError(f"missing must be 'pass' or 'fail', got {self.missing!r}")

    def __call__(self, data: CrowdData) -> CheckResult:
        j = data.judgments
        time = pd.to_numeric(j["time_elapsed_s"], errors="coerce")
        fast = (time < self.min_seconds) | (time.isna() & (self.missing == "fail"))
        reasons: dict[str, list[str]] = {}
        for w, s, t in zip(j["worker_id"][fast], j["statement_id"][fast], time[fast], strict=True):
            reasons.setdefault(w, []).append(f"{s}: {t:.2f}s" if pd.notna(t) else f"{s}: no time")
        if self.include_questionnaires:
            columns = [c for c in data.workers.columns if c.startswith("q") and c.endswith("_time_elapsed_s")]
            for column in columns:
                q_time = pd.to_numeric(data.workers[column], errors="coerce")
                q_fast = (q_time < self.min_seconds) | (q_time.isna() & (self.missing == "fail"))
                for w, t in zip(data.workers.index[q_fast], q_time[q_fast], strict=True):
                    label = column.removesuffix("_time_elapsed_s")
                    reasons.setdefault(w, []).append(
                        f"questionnaire {label}: {t:.2f}s" if pd.notna(t) else f"questionnaire {label}: no time"
                    )
        workers = pd.Index(j["worker_id"].unique())
        passed = pd.Series([w not in reasons for w in workers], index=workers)
        text = pd.Series(
            [f"under {self.min_seconds:g}s on " + "; ".join(reasons.get(w, [])) for w in workers], index=workers
        )
        return _result(self.name, "worker", passed, text)


@dataclass(frozen=True)
class TriesCheck:
    """The try that produced the data must be within `max_tries` (Crowd_Frame allows 10)."""

    max_tries: int = 10
    name: str = "tries"

    def __post_init__(self) -> None:
        if isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ValueError(f"max_tries must be an integer >= 1, got {self.max_tries!r}")

    def __call__(self, data: CrowdData) -> CheckResult:
        j = data.judgments
        tries = pd.to_numeric(j["try_number"], errors="coerce").groupby(j["worker_id"].to_numpy(), sort=False).max()
        passed = ~(tries > self.max_tries).fillna(False)
        reasons = pd.Series([f"try {t} > {self.max_tries}" for t in tries], index=tries.index)
        return _result(self.name, "worker", passed, reasons)


@dataclass(frozen=True)
class UrlDomainCheck:
    """The evidence URL must not come from a blocked domain (the experts' own sites leak the verdict)."""

    blocked: Sequence[str] = ("politifact", "abc.net.au")
    name: str = "url_domain"

    def __call__(self, data: CrowdData) -> CheckResult:
        j = data.judgments
        url = j["evidence_url"].astype("string").str.lower().fillna("")
        hit = pd.Series("", index=j.index)
        for domain in self.blocked:
            found = url.str.contains(domain.lower(), regex=False).to_numpy(dtype=bool)
            hit[found & (hit == "")] = domain
        passed = hit == ""
        reasons = "evidence URL from blocked domain " + hit
        return _result(self.name, "judgment", passed, reasons)


@dataclass(frozen=True)
class CustomCheck:
    """A user-defined check: `function(data)` returns a boolean Series (True = pass) indexed like the judgments
    (`level="judgment"`) or by worker id (`level="worker"`); `reason` explains a failure."""

    name: str
    function: Callable[[CrowdData], pd.Series]
    level: Level = "judgment"
    reason: str = "failed a custom check"

    def __call__(self, data: CrowdData) -> CheckResult:
        passed = self.function(data)
        if not isinstance(passed, pd.Series):
            raise TypeError(f"custom check {self.name!r} must return a pandas Series, got {type(passed).__name__}")
        expected = data.judgments.index if self.level == "judgment" else pd.Index(data.judgments["worker_id"].unique())
        if not passed.index.equals(expected):
            passed = passed.reindex(expected)
            if passed.isna().any():
                raise ValueError(f"custom check {self.name!r} returned a Series that does not cover every {self.level}")
        return _result(self.name, self.level, passed.astype(bool), pd.Series(self.reason, index=passed.index))


Check = Callable[[CrowdData], CheckResult]


def default_checks(min_seconds: float = 2.0, max_tries: int = 10) -> list[Check]:
    """The paper's checks: completeness (with URL), gold LOW < HIGH, time >= 2 s everywhere, tries <= 10, plus the
    blocked-domain check on evidence URLs."""
    return [
        CompletenessCheck(),
        GoldCheck(),
        TimeCheck(min_seconds=min_seconds),
        TriesCheck(max_tries=max_tries),
        UrlDomainCheck(),
    ]


@dataclass
class QCReport:
    """All check results on one dataset.

    Attributes:
        results: one `CheckResult` per check, in order.
        summary: check, level, n_checked, n_failed, n_workers_failed.
        failures: one row per failure: check, level, worker_id, statement_id (judgment checks), reason.
        workers: per worker, one boolean column per check (True = pass) and `passed` (all of them).
        judgment_mask: per judgment row, True when its worker passed every check and the row every judgment check.
    """

    results: list[CheckResult]
    summary: pd.DataFrame
    failures: pd.DataFrame
    workers: pd.DataFrame
    judgment_mask: pd.Series = field(repr=False)

    @property
    def failed_workers(self) -> list[str]:
        return [str(w) for w in self.workers.index[~self.workers["passed"]]]


def run_qc(data: CrowdData, checks: Sequence[Check] | None = None) -> QCReport:
    """Run `checks` (default: `default_checks()`) and collect what fails and why."""
    checks = list(checks) if checks is not None else default_checks()
    j = data.judgments
    workers = pd.Index(j["worker_id"].unique(), name="worker_id")
    per_worker = pd.DataFrame(index=workers)
    row_ok = pd.Series(True, index=j.index)
    failures, summary, results = [], [], []
    for check in checks:
        result = check(data)
        results.append(result)
        if result.level == "judgment":
            failed = ~result.passed
            row_ok &= result.passed
            worker_ok = result.passed.groupby(j["worker_id"].to_numpy(), sort=False).all().reindex(workers)
            failures.append(
                pd.DataFrame(
                    {
                        "check": result.name,
                        "level": "judgment",
                        "worker_id": j.loc[failed, "worker_id"].to_numpy(),
                        "statement_id": j.loc[failed, "statement_id"].to_numpy(),
                        "reason": result.reasons.to_numpy(),
                    }
                )
            )
        else:
            worker_ok = result.passed.reindex(workers).fillna(False).astype(bool)
            failed_w = worker_ok.index[~worker_ok]
            failures.append(
                pd.DataFrame(
                    {
                        "check": result.name,
                        "level": "worker",
                        "worker_id": np.asarray(failed_w, dtype=object),
                        "statement_id": None,
                        "reason": result.reasons.reindex(failed_w).fillna("").to_numpy(),
                    }
                )
            )
        per_worker[result.name] = worker_ok.to_numpy(dtype=bool)
        summary.append(
            {
                "check": result.name,
                "level": result.level,
                "n_checked": int(result.passed.size),
                "n_failed": int((~result.passed).sum()),
                "n_workers_failed": int((~worker_ok).sum()),
            }
        )
    per_worker["passed"] = per_worker.all(axis=1) if checks else True
    mask = row_ok & j["worker_id"].map(per_worker["passed"]).astype(bool)
    failure_table = (
        pd.concat(failures, ignore_index=True)
        if failures
        else pd.DataFrame(columns=["check", "level", "worker_id", "statement_id", "reason"])
    )
    return QCReport(
        results=results, summary=pd.DataFrame(summary), failures=failure_table, workers=per_worker, judgment_mask=mask
    )
