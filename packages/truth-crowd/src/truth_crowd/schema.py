"""The data model: judgments, statements and workers as pandas DataFrames, with the checks that keep them valid.

Three tables describe a crowdsourcing run (spec 7.1):

- **judgments** (wide): one row per (worker, statement) with the 9 item columns on the -2..+2 scale, the position in
  the HIT, the time spent, the evidence URL and the try number;
- **statements**: one row per statement with its dataset and expert label (`gt_value`, `gt_scale`, `gt_norm`);
- **workers**: one row per worker with demographics, CRT answers and questionnaire times.

`to_long` gives the long form (one row per worker x statement x item) that agreement and aggregation consume;
`to_crowdkit` gives crowd-kit's `worker, task, label` frame; `to_reliability_matrix` the raters x units matrix of
the `krippendorff` package. Validators raise `InputError` naming the row and column, never drop anything silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
import pandas as pd

from repro_core.errors import InputError

__all__ = [
    "ABC_LEVELS",
    "DIMENSIONS",
    "ITEMS",
    "JUDGMENT_COLUMNS",
    "LIKERT5",
    "LONG_COLUMNS",
    "NAMED_SCALES",
    "POLITIFACT_LEVELS",
    "Scale",
    "gt_norm",
    "normalise_magnitudes",
    "to_crowdkit",
    "to_long",
    "to_reliability_matrix",
    "validate_judgments",
    "validate_long",
]

#: The seven dimensions of the paper, in the order of the released data.
DIMENSIONS: tuple[str, ...] = (
    "correctness",
    "neutrality",
    "comprehensibility",
    "precision",
    "completeness",
    "speaker_trustworthiness",
    "informativeness",
)
#: The nine items every judgment has: overall truthfulness, the worker's confidence and the seven dimensions.
ITEMS: tuple[str, ...] = ("overall_truthfulness", "confidence", *DIMENSIONS)

#: PolitiFact's six levels, from the `doc_name` token to the value 0..5 (spec 2.1).
POLITIFACT_LEVELS: dict[str, int] = {"LIE": 0, "FALSE": 1, "BARELYTRUE": 2, "HALFTRUE": 3, "MOSTLYTRUE": 4, "TRUE": 5}
#: ABC's three levels, from the `doc_name` token to the value 0..2.
ABC_LEVELS: dict[str, int] = {"Negative": 0, "In_Between": 1, "Positive": 2}

#: Columns of the wide judgments table, in order (the 9 item columns sit after `gold_kind`).
JUDGMENT_COLUMNS: tuple[str, ...] = (
    "worker_id",
    "statement_id",
    "statement_text",
    "dataset",
    "position",
    "is_gold",
    "gold_kind",
    *ITEMS,
    "time_elapsed_s",
    "accesses",
    "evidence_url",
    "try_number",
)
#: Columns of the long judgments table.
LONG_COLUMNS: tuple[str, ...] = (
    "worker_id",
    "statement_id",
    "item",
    "value",
    "position",
    "time_elapsed_s",
    "evidence_url",
    "try_number",
)


@dataclass(frozen=True)
class Scale:
    """A rating scale: discrete points (numbers, or string categories), a continuous range, or magnitudes.

    - discrete numeric: `values` ascending, `labels` optional (one per value when given): `LIKERT5`,
      `Scale.range(0, 100)` (101 levels, no labels needed);
    - continuous: `bounds=(low, high)` and no `values`: any real number in the range (`Scale.range(0, 1, step=None)`);
    - magnitude estimation: `Scale.magnitude()`, any finite number > 0, unbounded; compare workers only after
      `normalise_magnitudes` (each worker's answers divided by their geometric mean);
    - nominal: `Scale.categories("yes", "no", ...)`: string categories, no order; loaders store each answer as its
      category's code 0..k-1 (so every numeric path works) and alpha's default level is nominal.

    Values may be any integers or reals (no Int8 limit): `dtype` is the narrowest pandas dtype that holds them.
    """

    name: str
    values: tuple = ()
    labels: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    magnitude_estimation: bool = False
    nominal: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.magnitude_estimation:
            if self.values or self.bounds is not None:
                raise ValueError(f"Scale {self.name!r}: a magnitude-estimation scale has no values or bounds")
            return
        if not self.values:
            if self.bounds is None:
                raise ValueError(f"Scale {self.name!r}: values must not be empty (or give bounds=(low, high))")
            low, high = (float(b) for b in self.bounds)
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise ValueError(f"Scale {self.name!r}: bounds must be finite with low < high, got {self.bounds}")
            return
        if self.labels and len(self.labels) != len(self.values):
            raise ValueError(f"Scale {self.name!r}: {len(self.labels)} labels for {len(self.values)} values")
        if all(isinstance(v, str) for v in self.values):
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"Scale {self.name!r}: categories must be distinct, got {self.values}")
            object.__setattr__(self, "nominal", True)
            return
        if any(isinstance(v, str | bool) or not np.isfinite(float(v)) for v in self.values):
            raise ValueError(f"Scale {self.name!r}: values must be finite numbers or all strings, got {self.values}")
        if list(self.values) != sorted(set(self.values)):
            raise ValueError(f"Scale {self.name!r}: values must be strictly increasing, got {self.values}")

    @classmethod
    def range(cls, low: float, high: float, step: float | None = 1, *, name: str | None = None) -> Scale:
        """Every point `low, low + step, ..., high` without per-value labels (`step=None`: the continuous range)."""
        name = name or f"{low:g}:{high:g}"
        if step is None:
            return cls(name, bounds=(float(low), float(high)))
        if not step > 0 or not high > low:
            raise ValueError(f"Scale.range: needs low < high and step > 0, got {low}, {high}, {step}")
        n = round((high - low) / step)
        if not np.isclose(low + n * step, high):
            raise ValueError(f"Scale.range: {high} is not low + k * step for {low}, {step}")
        integral = all(float(x).is_integer() for x in (low, high, step))
        points = [low + i * step for i in range(n + 1)]
        return cls(name, tuple(int(p) for p in points) if integral else tuple(float(p) for p in points))

    @classmethod
    def magnitude(cls, name: str = "magnitude") -> Scale:
        """Unbounded magnitude estimation: any finite number > 0 (normalise per worker before comparing)."""
        return cls(name, magnitude_estimation=True)

    @classmethod
    def categories(cls, *names: str, name: str = "categories") -> Scale:
        """A nominal scale of string categories (answers are stored as the codes 0..k-1 in this order)."""
        return cls(name, tuple(names))

    @classmethod
    def parse(cls, text: str) -> Scale:
        """A scale from its command-line spelling: a known name (`likert5`, `s3`, `s6`, `s100`), `LOW:HIGH`
        (integers), `LOW:HIGH:STEP`, `LOW:HIGH:continuous`, `magnitude`, or `cat:A,B,C` (nominal categories)."""
        key = text.strip()
        if key.lower() in NAMED_SCALES:
            return NAMED_SCALES[key.lower()]
        if key.lower() == "magnitude":
            return cls.magnitude()
        if key.lower().startswith("cat:"):
            names = tuple(n.strip() for n in key[4:].split(","))
            if len(names) < 2 or any(not n for n in names):
                raise ValueError(f"scale {text!r}: cat: needs two or more non-empty categories, e.g. cat:yes,no")
            return cls.categories(*names, name=key)
        parts = key.split(":")
        if len(parts) in (2, 3):
            try:
                low, high = float(parts[0]), float(parts[1])
                step: float | None = 1.0
                if len(parts) == 3:
                    step = None if parts[2].lower() == "continuous" else float(parts[2])
            except ValueError:
                pass
            else:
                if not (np.isfinite(low) and np.isfinite(high)) or (step is not None and not np.isfinite(step)):
                    raise ValueError(f"scale {text!r}: bounds and step must be finite")
                return cls.range(low, high, step, name=key)
        known = ", ".join(sorted(NAMED_SCALES))
        raise ValueError(
            f"unknown scale {text!r}: expected {known}, LOW:HIGH, LOW:HIGH:STEP, LOW:HIGH:continuous, magnitude "
            "or cat:A,B,..."
        )

    @property
    def discrete(self) -> bool:
        """True when answers are points of `values` (numeric or categories)."""
        return bool(self.values)

    @property
    def low(self) -> float:
        if self.magnitude_estimation:
            return 0.0
        if self.nominal:
            return 0
        return self.values[0] if self.values else self.bounds[0]  # type: ignore[index]

    @property
    def high(self) -> float:
        if self.magnitude_estimation:
            return float("inf")
        if self.nominal:
            return len(self.values) - 1
        return self.values[-1] if self.values else self.bounds[1]  # type: ignore[index]

    @property
    def domain(self) -> tuple[float, ...] | None:
        """The numeric values answers can take (category codes for a nominal scale); None when continuous."""
        if self.nominal:
            return tuple(range(len(self.values)))
        return tuple(self.values) if self.values else None

    @property
    def level(self) -> str:
        """Krippendorff's level of measurement the scale supports best: nominal, interval or ratio (magnitudes)."""
        return "nominal" if self.nominal else "ratio" if self.magnitude_estimation else "interval"

    @property
    def dtype(self) -> str:
        """The narrowest nullable pandas dtype holding every value: Int8/16/32/64 for integers, Float64 otherwise."""
        domain = self.domain
        if domain is None or not all(float(v).is_integer() for v in domain):
            return "Float64"
        low, high = min(domain), max(domain)
        for name, bits in (("Int8", 8), ("Int16", 16), ("Int32", 32)):
            if -(2 ** (bits - 1)) <= low and high < 2 ** (bits - 1):
                return name
        return "Int64"

    def describe(self) -> str:
        """The scale in words, for error messages."""
        if self.magnitude_estimation:
            return f"the {self.name} scale (magnitude estimation: finite numbers > 0)"
        if not self.values:
            return f"the {self.name} scale [{self.bounds[0]:g}, {self.bounds[1]:g}]"  # type: ignore[index]
        shown = list(self.values) if len(self.values) <= 12 else f"{self.values[0]}..{self.values[-1]}"
        return f"the {self.name} scale {shown}"

    def codes(self, values: np.ndarray | pd.Series) -> np.ndarray:
        """Category codes 0..k-1 of string answers on a nominal scale (NaN for a missing or unknown answer)."""
        lookup = {v: i for i, v in enumerate(self.values)}
        return np.array([lookup.get(v.strip() if isinstance(v, str) else v, np.nan) for v in values], dtype=float)

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the entries of `values` that are answers on this scale (NaN gives False)."""
        values = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            if self.magnitude_estimation:
                return np.isfinite(values) & (values > 0)
            if not self.values:
                return np.isfinite(values) & (values >= self.low) & (values <= self.high)
            return np.isin(values, np.asarray(self.domain, dtype=float))


#: The 5-level scale of all nine items (Crowd_Frame's `dimensions.json`): -2 completely disagree .. +2 agree.
LIKERT5 = Scale(
    "likert5",
    (-2, -1, 0, 1, 2),
    ("completely-disagree", "disagree", "neither-agree-nor-disagree", "agree", "completely-agree"),
)
#: Scales known by name (`--scale NAME`): the IPM 5-level scale and the SIGIR 2020 3-, 6- and 100-level scales
#: (S3 0..2, S6 0..5, S100 0..100).
NAMED_SCALES: dict[str, Scale] = {
    "likert5": LIKERT5,
    "s3": Scale("s3", (0, 1, 2)),
    "s6": Scale("s6", (0, 1, 2, 3, 4, 5)),
    "s100": Scale("s100", tuple(range(101))),
}


def normalise_magnitudes(judgments: pd.DataFrame, items: Sequence[str], *, by: str = "worker_id") -> pd.DataFrame:
    """Magnitude-estimation answers divided by each worker's geometric mean (per item), as the crowdsourcing
    literature does (Maddalena et al., "On Crowdsourcing Relevance Magnitudes for Information Retrieval
    Evaluation", ACM TOIS 35(3), 2017): a worker's personal modulus cancels, ratios are kept. Returns a copy."""
    out = judgments.copy()
    for item in items:
        values = pd.to_numeric(out[item]).astype(float)
        if (values.dropna() <= 0).any():
            raise ValueError(f"normalise_magnitudes: {item} has answers <= 0; magnitudes must be positive")
        log_mean = np.log(values).groupby(out[by]).transform("mean")
        out[item] = pd.array((values / np.exp(log_mean)).to_numpy(dtype=float, na_value=np.nan), dtype="Float64")
    return out


def gt_norm(
    gt_value: pd.Series | np.ndarray, gt_scale: pd.Series | np.ndarray, *, low: float = -2.0, high: float = 2.0
) -> np.ndarray:
    """Expert level mapped onto the crowd's range [low, high]: `low + gt_value / (k - 1) * (high - low)`; the IPM
    default [-2, 2] gives the paper's `gt_value / (k - 1) * 4 - 2` (spec 5.3); a SIGIR 2020 S6 file uses [0, 5]."""
    value = np.asarray(gt_value, dtype=float)
    k = np.asarray(gt_scale, dtype=float)
    return low + value / (k - 1.0) * (high - low)


def _csv_line(frame: pd.DataFrame, position: int) -> int | None:
    """CSV line of the row at `position` when the frame came from a file (header on line 1), else None."""
    if "_line" in frame.columns:
        return int(frame["_line"].iloc[position])
    return None


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], path: str | PathLike[str] | None) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(repr(c) for c in missing)}", path=path, field=missing[0]
        )


def _check_scale_values(
    frame: pd.DataFrame, column: str, scale: Scale, path: str | PathLike[str] | None, *, allow_missing: bool = True
) -> None:
    """Raise on the first value of `column` that is not a point of `scale` (missing values allowed or not)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    missing = np.asarray(frame[column].isna())
    bad = ~scale.contains(values) & ~(missing & allow_missing)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = frame[column].iloc[i]
        what = "missing value" if missing[i] else f"value {raw!r} is not on {scale.describe()}"
        raise InputError(f"{what} (row {i})", path=path, line=_csv_line(frame, i), field=column)


def _check_unique(frame: pd.DataFrame, keys: Sequence[str], path: str | PathLike[str] | None) -> None:
    duplicated = frame.duplicated(list(keys), keep="first").to_numpy()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        key = ", ".join(f"{k}={frame[k].iloc[i]!r}" for k in keys)
        raise InputError(
            f"duplicate ({', '.join(keys)}) row: {key} (row {i})", path=path, line=_csv_line(frame, i), field=keys[-1]
        )


def _check_ids(frame: pd.DataFrame, columns: Sequence[str], path: str | PathLike[str] | None) -> None:
    for column in columns:
        empty = frame[column].isna().to_numpy() | (frame[column].astype("string").str.strip() == "").fillna(True)
        empty = np.asarray(empty, dtype=bool)
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise InputError(f"empty identifier (row {i})", path=path, line=_csv_line(frame, i), field=column)


def validate_judgments(
    judgments: pd.DataFrame,
    *,
    scale: Scale = LIKERT5,
    items: Sequence[str] = ITEMS,
    path: str | PathLike[str] | None = None,
) -> pd.DataFrame:
    """Check a wide judgments table and return it: columns present, ids non-empty, values on `scale`, unique pairs.

    Missing item values are allowed (quality control reports them); anything else wrong raises `InputError`
    naming the row (and the CSV line when the table carries a `_line` column) and the column.
    """
    _require_columns(judgments, ["worker_id", "statement_id", *items], path)
    _check_ids(judgments, ["worker_id", "statement_id"], path)
    for item in items:
        _check_scale_values(judgments, item, scale, path)
    if "position" in judgments.columns:
        pos = pd.to_numeric(judgments["position"], errors="coerce")
        bad = ~(pos >= 0).fillna(False) & judgments["position"].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"position must be an integer >= 0 (row {i})", path=path, line=_csv_line(judgments, i), field="position"
            )
    _check_unique(judgments, ["worker_id", "statement_id"], path)
    return judgments


def validate_long(
    long: pd.DataFrame, *, scale: Scale = LIKERT5, path: str | PathLike[str] | None = None, allow_missing: bool = False
) -> pd.DataFrame:
    """Check a long judgments table (`worker_id, statement_id, item, value`) and return it.

    Values must be on `scale`, and each (worker, statement, item) must occur once.
    """
    _require_columns(long, ["worker_id", "statement_id", "item", "value"], path)
    _check_ids(long, ["worker_id", "statement_id", "item"], path)
    _check_scale_values(long, "value", scale, path, allow_missing=allow_missing)
    _check_unique(long, ["worker_id", "statement_id", "item"], path)
    return long


def to_long(judgments: pd.DataFrame, items: Sequence[str] = ITEMS, *, dropna: bool = True) -> pd.DataFrame:
    """Melt the wide judgments table into one row per (worker, statement, item).

    Returns the `LONG_COLUMNS` (those present) plus `dataset` and `is_gold` when the wide table has them;
    `value` is float (NaN rows dropped unless `dropna=False`).
    """
    extra = [
        c
        for c in ("position", "time_elapsed_s", "evidence_url", "try_number", "dataset", "is_gold")
        if c in judgments.columns
    ]
    ids = ["worker_id", "statement_id", *extra]
    long = judgments.melt(id_vars=ids, value_vars=list(items), var_name="item", value_name="value")
    long["value"] = pd.to_numeric(long["value"]).astype(float)
    if dropna:
        long = long[long["value"].notna()]
    order = [c for c in LONG_COLUMNS if c in long.columns] + [c for c in ("dataset", "is_gold") if c in long.columns]
    return long[order].reset_index(drop=True)


def to_crowdkit(data: pd.DataFrame, item: str | None = None) -> pd.DataFrame:
    """crowd-kit's input: a `worker, task, label` frame for one item (from the wide or the long table).

    `item` names the item column of a wide table or filters the `item` column of a long one; missing answers are
    dropped. Labels keep their numeric values (-2..2 as int where they are whole numbers).
    """
    if "item" in data.columns and "value" in data.columns:
        if item is not None:
            data = data[data["item"] == item]
        elif data["item"].nunique() > 1:
            raise ValueError("to_crowdkit: the long table has several items; pass item=")
        values = data["value"]
    else:
        if item is None or item not in data.columns:
            raise ValueError(f"to_crowdkit: item must name a column of the wide table, got {item!r}")
        values = data[item]
    keep = values.notna().to_numpy()
    labels = pd.to_numeric(values[keep]).to_numpy(dtype=float)
    as_int = np.all(labels == np.round(labels))
    return pd.DataFrame(
        {
            "worker": data["worker_id"].to_numpy()[keep],
            "task": data["statement_id"].to_numpy()[keep],
            "label": labels.astype(np.int64) if as_int else labels,
        }
    )


def to_reliability_matrix(data: pd.DataFrame, item: str | None = None) -> pd.DataFrame:
    """Raters x units matrix (NaN where a worker did not judge a statement), the `krippendorff` package's layout.

    Accepts the wide table (with `item`), the long table or a crowd-kit frame. Shape `[n_workers, n_statements]`.

    Raises `ValueError` for a (worker, task) pair that occurs twice (alpha would need to know which rating counts;
    `truth_crowd.aggregation.drop_duplicate_answers` picks one explicitly), a missing worker or task id, or a label
    that is not a number. Rows and columns are sorted (as `DataFrame.pivot` sorts them). Built by integer codes and
    one scatter, not by `pivot`: 10^6 answers take a small fraction of a second.
    """
    frame = to_crowdkit(data, item) if "worker" not in data.columns else data
    missing = [c for c in ("worker", "task", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"to_reliability_matrix: missing column(s) {missing}")
    worker, workers = pd.factorize(frame["worker"], sort=True)
    task, tasks = pd.factorize(frame["task"], sort=True)
    if (worker < 0).any() or (task < 0).any():
        raise ValueError("to_reliability_matrix: a worker or task id is missing")
    try:
        labels = np.asarray(frame["label"], dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"to_reliability_matrix: labels must be numbers ({error})") from None
    pair = worker.astype(np.int64) * len(tasks) + task
    if not pd.Index(pair).is_unique:
        repeated = pd.Index(pair).duplicated()
        first = int(np.flatnonzero(repeated)[0])
        worker_id, task_id = (
            x.item() if isinstance(x, np.generic) else x for x in (workers[worker[first]], tasks[task[first]])
        )
        raise ValueError(
            f"to_reliability_matrix: {int(repeated.sum())} (worker, task) pair(s) occur more than once, e.g. worker "
            f"{worker_id!r} on task {task_id!r}; keep one answer per pair first "
            "(truth_crowd.aggregation.drop_duplicate_answers)"
        )
    matrix = np.full((len(workers), len(tasks)), np.nan)
    matrix[worker, task] = labels
    return pd.DataFrame(
        matrix, index=pd.Index(workers, name="worker"), columns=pd.Index(tasks, name="task"), copy=False
    )
