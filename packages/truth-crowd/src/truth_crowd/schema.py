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
    "POLITIFACT_LEVELS",
    "Scale",
    "gt_norm",
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
    """An ordered rating scale: its numeric values (ascending) and a label per value.

    The crowd's 5-level agreement scale is `LIKERT5`; expert scales are 6-level (PolitiFact) and 3-level (ABC).
    """

    name: str
    values: tuple[int, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"Scale {self.name!r}: values must not be empty")
        if len(self.labels) != len(self.values):
            raise ValueError(f"Scale {self.name!r}: {len(self.labels)} labels for {len(self.values)} values")
        if list(self.values) != sorted(set(self.values)):
            raise ValueError(f"Scale {self.name!r}: values must be strictly increasing, got {self.values}")

    @property
    def low(self) -> int:
        return self.values[0]

    @property
    def high(self) -> int:
        return self.values[-1]

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the entries of `values` that are points of the scale (NaN gives False)."""
        return np.isin(values, np.asarray(self.values, dtype=float))


#: The 5-level scale of all nine items (Crowd_Frame's `dimensions.json`): -2 completely disagree .. +2 agree.
LIKERT5 = Scale(
    "likert5",
    (-2, -1, 0, 1, 2),
    ("completely-disagree", "disagree", "neither-agree-nor-disagree", "agree", "completely-agree"),
)


def gt_norm(gt_value: pd.Series | np.ndarray, gt_scale: pd.Series | np.ndarray) -> np.ndarray:
    """Expert level mapped onto the crowd's [-2, 2] range: `gt_value / (k - 1) * 4 - 2` (spec 5.3)."""
    value = np.asarray(gt_value, dtype=float)
    k = np.asarray(gt_scale, dtype=float)
    return value / (k - 1.0) * 4.0 - 2.0


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
        what = "missing value" if missing[i] else f"value {raw!r} is not on the {scale.name} scale {list(scale.values)}"
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
    """
    frame = to_crowdkit(data, item) if "worker" not in data.columns else data
    matrix = frame.pivot(index="worker", columns="task", values="label")
    return matrix.astype(float)
