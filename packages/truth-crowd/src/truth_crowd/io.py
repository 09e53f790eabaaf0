"""Loaders: the released IPM2021 CSV, the SIGIR2020 statement metadata, and generic long or wide CSVs.

Every loader reads the file with Python's `csv` module, so each record keeps the line it started on (statements may
span lines), and converts columns explicitly: a value that is not a number, not on the scale, a duplicate
(worker, statement) pair or a missing column raises `InputError` naming the file, the line and the column. Nothing
is dropped silently: each decision a loader takes about the data (spec 3.3) is logged and kept in
`CrowdData.decisions`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Literal, TextIO

import numpy as np
import pandas as pd

from repro_core.errors import InputError
from truth_crowd.schema import (
    ABC_LEVELS,
    ITEMS,
    LIKERT5,
    NAMED_SCALES,
    POLITIFACT_LEVELS,
    Scale,
    gt_norm,
    to_long,
    validate_judgments,
)

__all__ = [
    "BROKEN_STATEMENTS",
    "IPM_ITEM_STEMS",
    "CrowdData",
    "expert_level",
    "find_shared_data",
    "load_csv",
    "load_ipm2021",
    "load_parquet",
    "load_sigir2020",
    "load_sigir2020_crowd",
    "load_table",
    "read_csv_records",
    "read_parquet_records",
]

logger = logging.getLogger(__name__)

Source = str | PathLike[str] | TextIO | pd.DataFrame

#: Column stems of the 9 items in the released CSV (`doc_<stem>_value`), by our item name.
IPM_ITEM_STEMS: dict[str, str] = {
    "overall_truthfulness": "overall-truthfulness",
    "confidence": "confidence",
    "correctness": "correctness",
    "neutrality": "neutrality",
    "comprehensibility": "comprehensibility",
    "precision": "precision",
    "completeness": "completeness",
    "speaker_trustworthiness": "speaker's-trustworthiness",
    "informativeness": "informativeness",
}
#: Statements whose judgments are known to be about other statements (spec 3.3 quirk 1).
BROKEN_STATEMENTS: tuple[str, ...] = ("DEM_BARELYTRUE_doc7",)

_PF_LABELS = ("pants-on-fire", "false", "barely-true", "half-true", "mostly-true", "true")
_ABC_LABELS = ("negative", "in-between", "positive")
_PF_LABEL_VALUE = {label: i for i, label in enumerate(_PF_LABELS)} | {"mostly-false": 2, "pants-fire": 0}
_ABC_LABEL_VALUE = {label: i for i, label in enumerate(_ABC_LABELS)}
_DOC_NAME = re.compile(
    r"^(?:(?P<party>DEM|REP)_(?P<pf>LIE|FALSE|BARELYTRUE|HALFTRUE|MOSTLYTRUE|TRUE)"
    r"|(?P<abcparty>Labor|Liberal)_(?P<abc>Negative|In_Between|Positive))_doc(?P<n>\d+)$"
)
_GOLD = ("HIGH", "LOW")
_DEMOGRAPHICS = ("age", "school", "taxes", "political_views", "consideration", "southern_border", "environment")
_CRT = (("q_1_farmers_value", 3.0), ("q_2_marks_value", 9.0), ("q_3_athletics_value", 4.0))


@dataclass
class CrowdData:
    """A loaded (or simulated) crowdsourcing run: the three tables of `truth_crowd.schema` and how they were made.

    Attributes:
        judgments: wide table, one row per (worker, statement) (`schema.JUDGMENT_COLUMNS` plus loader extras).
        statements: one row per statement, indexed by `statement_id`.
        workers: one row per worker, indexed by `worker_id`.
        items: the item columns of `judgments`.
        decisions: what the loader decided about the data, in words (also logged at INFO/WARNING).
        source: the file the data came from, if any.
        source_columns: number of columns of the source file, if any.
    """

    judgments: pd.DataFrame
    statements: pd.DataFrame
    workers: pd.DataFrame
    items: tuple[str, ...] = ITEMS
    decisions: list[str] = field(default_factory=list)
    source: str | None = None
    source_columns: int | None = None
    scale: Scale = LIKERT5

    def long(self, items: Sequence[str] | None = None, *, dropna: bool = True) -> pd.DataFrame:
        """The long table: one row per (worker, statement, item) with position, time, URL and try."""
        return to_long(self.judgments, tuple(items) if items is not None else self.items, dropna=dropna)

    def real(self) -> CrowdData:
        """The canonical filter (spec 3.4): real statements only (`dataset` in politifact/abc), gold rows dropped."""
        keep = self.judgments["dataset"].isin(["politifact", "abc"]).to_numpy()
        judgments = self.judgments[keep].reset_index(drop=True)
        statements = self.statements[self.statements.index.isin(judgments["statement_id"])]
        note = f"canonical filter: kept {int(keep.sum())} of {len(keep)} rows with dataset in (politifact, abc)"
        logger.info(note)
        return replace(self, judgments=judgments, statements=statements, decisions=[*self.decisions, note])

    def subset(self, dataset: str) -> CrowdData:
        """Only the judgments of one dataset (`politifact`, `abc` or `gold`)."""
        keep = (self.judgments["dataset"] == dataset).to_numpy()
        judgments = self.judgments[keep].reset_index(drop=True)
        statements = self.statements[self.statements.index.isin(judgments["statement_id"])]
        return replace(self, judgments=judgments, statements=statements)


def _source_name(source: Source) -> str:
    if isinstance(source, pd.DataFrame):
        return "<DataFrame>"
    if isinstance(source, str | PathLike):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def _cell_text(value: object) -> str | None:
    """A DataFrame cell as the CSV reader would give it: a string, or None when missing or empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value)
    return text if text != "" else None


def frame_records(frame: pd.DataFrame, name: str = "<DataFrame>") -> pd.DataFrame:
    """A DataFrame in the form the CSV reader gives (cells as strings, missing as None) with a `_line` column (the
    1-based row number, which errors name), so every loader accepts a DataFrame as well as a path."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    columns = [str(c).strip() for c in frame.columns]
    if len(set(columns)) != len(columns) or any(c == "" for c in columns):
        raise InputError("duplicate or empty column names", path=name, line=1)
    if "_line" in columns:
        raise InputError("the column name '_line' is reserved", path=name, line=1, field="_line")
    out = pd.DataFrame(
        {c: np.array([_cell_text(v) for v in frame.iloc[:, i]], dtype=object) for i, c in enumerate(columns)},
        index=pd.RangeIndex(len(frame)),
    )
    out["_line"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return out


def _read_records(source: Source) -> pd.DataFrame:
    """CSV records of a path or stream, or the records of a DataFrame (see `frame_records`)."""
    if isinstance(source, pd.DataFrame):
        return frame_records(source)
    return read_csv_records(source)


def read_csv_records(source: Source) -> pd.DataFrame:
    """Read a CSV into a frame of strings (empty cells missing) with a `_line` column: the line each record starts on.

    Raises `InputError` for undecodable bytes, malformed quoting, an empty file, duplicate or empty header names and
    records whose number of fields differs from the header's.
    """
    name = _source_name(source)
    try:
        if isinstance(source, str | PathLike):
            with open(source, newline="", encoding="utf-8-sig") as handle:
                text = handle.read()
        else:
            text = source.read()
            if isinstance(text, bytes):
                text = text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError("the file contains a NUL byte (binary data?)", path=name, line=line)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InputError("empty file: no header row", path=name, line=1)
        header = [h.strip() for h in header]
        if any(h == "" for h in header):
            raise InputError(f"empty column name at position {header.index('')}", path=name, line=1)
        seen: set[str] = set()
        for h in header:
            if h in seen:
                raise InputError("duplicate column name", path=name, line=1, field=h)
            seen.add(h)
        if "_line" in seen:
            raise InputError("the column name '_line' is reserved", path=name, line=1, field="_line")
        start = reader.line_num + 1
        for record in reader:
            if not record:  # blank line
                start = reader.line_num + 1
                continue
            if len(record) != len(header):
                raise InputError(f"{len(record)} fields where the header has {len(header)}", path=name, line=start)
            records.append([None if value == "" else value for value in record])
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", path=name, line=reader.line_num) from exc
    frame = (
        pd.DataFrame(records, columns=header, dtype=object)
        if records
        else pd.DataFrame({h: pd.Series([], dtype=object) for h in header})
    )
    frame["_line"] = np.asarray(lines, dtype=np.int64)
    return frame


def _numeric(
    frame: pd.DataFrame, column: str, path: str, *, integer: bool = False, allow_missing: bool = True
) -> pd.Series:
    """Convert a string column to float, raising on the first non-numeric (or non-integer) entry."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if integer:
        bad |= values.notna() & (values != np.round(values))
    if not allow_missing:
        bad |= raw.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        value = raw.iloc[i]
        what = (
            "missing value"
            if value is None or pd.isna(value)
            else (
                f"non-integer value {value!r}"
                if integer and pd.notna(values.iloc[i])
                else f"non-numeric value {value!r}"
            )
        )
        raise InputError(f"{what} (row {i})", path=path, line=int(frame["_line"].iloc[i]), field=column)
    values = values.astype(float)
    if not np.isfinite(values.dropna()).all():
        i = int(np.flatnonzero(~np.isfinite(values.fillna(0.0)).to_numpy())[0])
        raise InputError(
            f"non-finite value {raw.iloc[i]!r} (row {i})", path=path, line=int(frame["_line"].iloc[i]), field=column
        )
    return values


def _show(value: object) -> str:
    """A cell for an error message: strings quoted, numbers (numpy ones too) plain."""
    return repr(value) if isinstance(value, str) else str(value)


def _scale_column(frame: pd.DataFrame, column: str, scale: Scale, path: str) -> pd.Series:
    """The answers of `column` on `scale`, as `scale.dtype` (category codes for a nominal scale); raises on the first
    answer off the scale."""
    if scale.nominal:
        raw = frame[column]
        codes = scale.codes(raw.to_numpy(dtype=object))
        bad = raw.notna().to_numpy() & np.isnan(codes)
        values = pd.Series(codes, index=frame.index)
    else:
        values = _numeric(frame, column, path)
        bad = (values.notna() & ~pd.Series(scale.contains(values.to_numpy()), index=values.index)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"value {_show(frame[column].iloc[i])} is not on {scale.describe()} (row {i})",
            path=path,
            line=int(frame["_line"].iloc[i]),
            field=column,
        )
    return pd.Series(
        pd.array(values.to_numpy(dtype=float, na_value=np.nan), dtype="Float64"), index=frame.index
    ).astype(scale.dtype)


def expert_level(statement_id: str) -> tuple[str, int, int, str] | None:
    """Dataset, expert value, scale size and party from an IPM2021 `doc_name`; None for names of another form.

    `DEM_BARELYTRUE_doc7` gives `("politifact", 2, 6, "DEM")`; `Labor_In_Between_doc3` gives `("abc", 1, 3, "Labor")`.
    """
    match = _DOC_NAME.match(statement_id)
    if match is None:
        return None
    if match["pf"] is not None:
        return "politifact", POLITIFACT_LEVELS[match["pf"]], 6, match["party"]
    return "abc", ABC_LEVELS[match["abc"]], 3, match["abcparty"]


def _strip_or_none(value: object) -> object:
    """A cell without surrounding whitespace; a blank string becomes missing."""
    return (value.strip() or None) if isinstance(value, str) else value


def _require_records(raw: pd.DataFrame, path: str, *, line: int = 2) -> None:
    """Refuse a file with a header but no records (`line`: where the first would be): every analysis of zero
    judgments fails or is meaningless."""
    if raw.empty:
        raise InputError("no judgments: the file has a header but no records", path=path, line=line)


def _decide(decisions: list[str], message: str, *, warn: bool = False) -> None:
    decisions.append(message)
    (logger.warning if warn else logger.info)(message)


def _mode(series: pd.Series) -> object:
    counts = series.dropna().value_counts()
    return counts.index[0] if len(counts) else None


def load_ipm2021(
    source: Source | None = None,
    *,
    drop_broken: bool = False,
    scale: Scale = LIKERT5,
    key: Literal["doc_name", "statement"] = "doc_name",
) -> CrowdData:
    """Load `IPM2021/multidimensional.csv`: the 93-column release (commit 7fbe9e7) or the 16-column HEAD copy.

    `source`: a path, a stream or a DataFrame; None loads the released file found by
    `truth_crowd.released_data.find_data_file` (`truth-crowd data fetch`, or `$REPRO_SHARED_DATA`).

    `key="statement"` keys statements by their text instead of `doc_name` (spec 3.3 quirk 1: some HITs showed
    another statement than their `doc_name`): texts are compared after normalisation (lower case, punctuation and
    repeated spaces removed); each text's id is its most frequent `doc_name` (ties: the first in sort order); its
    expert level comes from the label columns, which follow the statement actually shown. A worker who saw the
    same text twice (9 workers in the release) keeps the judgment at the earlier position; the later one is dropped
    and the decision logged.

    Statements are keyed by `doc_name` (the authors' identity) and workers by `unit_id`. The expert level comes from
    the `doc_name` level token (`doc_ground_truth_value` is not the expert label and is ignored). Gold rows (HIGH,
    LOW) are kept with `dataset="gold"`; the canonical filter `CrowdData.real()` keeps the 1,799 real rows.

    Known problems (spec 3.3), each recorded in `decisions`: a row with `doc_source=gold_question` but a real
    `doc_name` (unit_114, shown the LOW text) gets `dataset="gold"` so the canonical filter drops it; rows whose label
    columns name another level than their `doc_name` (the DEM_BARELYTRUE_doc7 crossovers) are flagged in
    `shown_level_mismatch`; `drop_broken=True` drops `BROKEN_STATEMENTS` altogether.
    """
    if key not in ("doc_name", "statement"):
        raise ValueError(f"key must be 'doc_name' or 'statement', got {key!r}")
    if source is None:
        from truth_crowd.released_data import HOW_TO_GET_DATA, find_data_file

        source = find_data_file("IPM2021/multidimensional.csv")
        if source is None:
            raise InputError(f"IPM2021/multidimensional.csv is not on this machine: {HOW_TO_GET_DATA}")
    path = _source_name(source)
    raw = _read_records(source)
    decisions: list[str] = []
    items: dict[str, str] = {}
    for item, stem in IPM_ITEM_STEMS.items():
        for column in (f"doc_{stem}_value", f"doc_{stem}"):
            if column in raw.columns:
                items[item] = column
                break
    required = ["unit_id", "doc_index", "doc_name", "doc_source"]
    missing = [c for c in required if c not in raw.columns] + [
        f"doc_{IPM_ITEM_STEMS[i]}_value" for i in IPM_ITEM_STEMS if i not in items
    ]
    if missing:
        raise InputError(
            f"not an IPM2021 file: missing column(s) {', '.join(repr(c) for c in missing)}",
            path=path,
            line=1,
            field=missing[0],
        )
    _require_records(raw, path)
    full = "doc_time_elapsed" in raw.columns and "q_0_age_value" in raw.columns
    n_columns = raw.shape[1] - 1
    layout = "full 93-column release" if full else "reduced release without times, URLs or questionnaires"
    _decide(decisions, f"{path}: {len(raw)} rows x {n_columns} columns ({layout})")

    for column in ("unit_id", "doc_name", "doc_source"):
        empty = raw[column].isna() | (raw[column].astype("string").str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise InputError(f"empty value (row {i})", path=path, line=int(raw["_line"].iloc[i]), field=column)
    source_values = raw["doc_source"].str.strip()
    bad = ~source_values.isin(["politifact", "abc", "gold_question"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"doc_source {raw['doc_source'].iloc[i]!r} is not politifact, abc or gold_question (row {i})",
            path=path,
            line=int(raw["_line"].iloc[i]),
            field="doc_source",
        )
    names = raw["doc_name"].str.strip()
    levels = [expert_level(n) for n in names]
    real_source = source_values.isin(["politifact", "abc"]).to_numpy()
    for i in np.flatnonzero(real_source):
        if levels[i] is None:
            raise InputError(
                f"doc_name {names.iloc[i]!r} of a {source_values.iloc[i]} row is not of the form "
                "{DEM|REP}_{LEVEL}_docN or {Labor|Liberal}_{LEVEL}_docN (row "
                f"{i})",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="doc_name",
            )
        if levels[i][0] != source_values.iloc[i]:
            raise InputError(
                f"doc_name {names.iloc[i]!r} does not belong to doc_source {source_values.iloc[i]!r} (row {i})",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="doc_source",
            )
    is_gold = names.isin(_GOLD).to_numpy()
    wrong_gold = is_gold & real_source
    if wrong_gold.any():
        i = int(np.flatnonzero(wrong_gold)[0])
        raise InputError(
            f"gold item {names.iloc[i]!r} with doc_source {source_values.iloc[i]!r} (row {i})",
            path=path,
            line=int(raw["_line"].iloc[i]),
            field="doc_source",
        )
    corrupted = (source_values == "gold_question").to_numpy() & ~is_gold
    for i in np.flatnonzero(corrupted):
        _decide(
            decisions,
            f"line {int(raw['_line'].iloc[i])}: {raw['unit_id'].iloc[i]} / {names.iloc[i]} has "
            "doc_source=gold_question (a gold text was shown instead of the statement): kept with "
            "dataset='gold', is_gold=False; the canonical filter drops it",
            warn=True,
        )

    dataset = np.where(real_source, source_values.to_numpy(dtype=object), "gold")
    judgments = pd.DataFrame(
        {
            "worker_id": raw["unit_id"].str.strip().to_numpy(dtype=object),
            "statement_id": names.to_numpy(dtype=object),
            "statement_text": raw["doc_statement"].to_numpy(dtype=object) if "doc_statement" in raw else None,
            "dataset": pd.Categorical(dataset, categories=["politifact", "abc", "gold"]),
            "position": _numeric(raw, "doc_index", path, integer=True, allow_missing=False).astype("int16").to_numpy(),
            "is_gold": is_gold,
            "gold_kind": pd.array(np.where(is_gold, names.to_numpy(dtype=object), None), dtype="string"),
        }
    )
    for item, column in items.items():
        judgments[item] = _scale_column(raw, column, scale, path).array
    if (judgments["position"] < 0).any():
        i = int(np.flatnonzero((judgments["position"] < 0).to_numpy())[0])
        raise InputError(
            f"doc_index must be >= 0 (row {i})", path=path, line=int(raw["_line"].iloc[i]), field="doc_index"
        )
    judgments["time_elapsed_s"] = (
        _numeric(raw, "doc_time_elapsed", path).to_numpy() if full else np.full(len(raw), np.nan)
    )
    judgments["accesses"] = (
        _numeric(raw, "doc_accesses", path, integer=True).astype("Int32").array
        if "doc_accesses" in raw
        else pd.array([pd.NA] * len(raw), dtype="Int32")
    )
    url_column = "doc_overall-truthfulness_url"
    judgments["evidence_url"] = pd.array(
        raw[url_column].to_numpy(dtype=object) if url_column in raw else [None] * len(raw), dtype="string"
    )
    judgments["try_number"] = (
        _numeric(raw, "current_try", path, integer=True).astype("Int16").array
        if "current_try" in raw
        else pd.array([pd.NA] * len(raw), dtype="Int16")
    )

    # The label columns follow the statement actually shown; compare their level with the doc_name level.
    shown = np.full(len(raw), np.nan)
    for column, mapping in (
        ("doc_ground_truth_politifact_label", _PF_LABEL_VALUE),
        ("doc_ground_truth_abc_label", _ABC_LABEL_VALUE),
    ):
        if column in raw:
            mapped = raw[column].str.strip().str.lower().map(mapping).to_numpy(dtype=float, na_value=np.nan)
            shown = np.where(np.isnan(shown), mapped, shown)
    named = np.array([lv[1] if lv is not None else np.nan for lv in levels], dtype=float)
    named_dataset = np.array([lv[0] if lv is not None else "" for lv in levels], dtype=object)
    shown_dataset = (
        np.where(
            raw["doc_ground_truth_politifact_label"].notna().to_numpy(),
            "politifact",
            np.where(raw["doc_ground_truth_abc_label"].notna().to_numpy(), "abc", ""),
        )
        if ("doc_ground_truth_politifact_label" in raw and "doc_ground_truth_abc_label" in raw)
        else named_dataset
    )
    mismatch = ~np.isnan(named) & ((shown != named) | (shown_dataset != named_dataset))
    judgments["shown_level_mismatch"] = mismatch
    if mismatch.any():
        counts = pd.Series(names.to_numpy()[mismatch]).value_counts()
        _decide(
            decisions,
            f"{int(mismatch.sum())} row(s) whose label columns name another level than their doc_name "
            f"(the worker saw another statement) flagged in shown_level_mismatch: "
            + ", ".join(f"{n} x{c}" for n, c in counts.items()),
            warn=True,
        )
    if "doc_ground_truth_value" in raw:
        _decide(
            decisions,
            "doc_ground_truth_value ignored: it varies within a doc_name (spec 3.3 quirk 3); the "
            "expert level comes from the doc_name level token",
        )

    if key == "statement":
        raw, judgments, levels = _key_by_text(raw, judgments, levels, shown, shown_dataset, path, decisions)
    if drop_broken:
        drop = judgments["statement_id"].isin(BROKEN_STATEMENTS).to_numpy()
        _decide(decisions, f"drop_broken: dropped {int(drop.sum())} row(s) of {', '.join(BROKEN_STATEMENTS)}")
        raw = raw[~drop].reset_index(drop=True)
        judgments = judgments[~drop].reset_index(drop=True)
        levels = [lv for lv, d in zip(levels, drop, strict=True) if not d]
        if raw.empty:
            raise InputError(f"no judgments left after dropping {', '.join(BROKEN_STATEMENTS)}", path=path)
    judgments["_line"] = raw["_line"].to_numpy()
    validate_judgments(judgments, scale=scale, path=path)
    judgments = judgments.drop(columns="_line")

    statements = _ipm_statements(raw, judgments, levels)
    workers = _ipm_workers(raw, judgments, full, path, decisions)
    return CrowdData(
        judgments=judgments,
        statements=statements,
        workers=workers,
        items=ITEMS,
        decisions=decisions,
        source=path,
        source_columns=n_columns,
        scale=scale,
    )


def normalise_text(text: object) -> str:
    """A statement text for matching: lower case, letters, digits and single spaces only (the released texts are
    stripped of punctuation, spec 3.3 quirk 5)."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(text).lower()).split())


def _key_by_text(
    raw: pd.DataFrame,
    judgments: pd.DataFrame,
    levels: list[tuple[str, int, int, str] | None],
    shown: np.ndarray,
    shown_dataset: np.ndarray,
    path: str,
    decisions: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, int, int, str] | None]]:
    """Re-key real rows by statement text (see `load_ipm2021(key="statement")`); gold rows keep HIGH/LOW."""
    if "doc_statement" not in raw.columns or not {
        "doc_ground_truth_politifact_label",
        "doc_ground_truth_abc_label",
    } <= set(raw.columns):
        raise InputError(
            "key='statement' needs the doc_statement and label columns", path=path, line=1, field="doc_statement"
        )
    real = judgments["dataset"].isin(["politifact", "abc"]).to_numpy()
    texts = np.array([normalise_text(t) if r else "" for t, r in zip(raw["doc_statement"], real, strict=True)])
    empty = real & (texts == "")
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise InputError(
            f"empty statement text (row {i})", path=path, line=int(raw["_line"].iloc[i]), field="doc_statement"
        )
    unlabelled = real & np.isnan(shown)
    if unlabelled.any():
        i = int(np.flatnonzero(unlabelled)[0])
        raise InputError(
            f"no expert label for the statement shown (row {i})",
            path=path,
            line=int(raw["_line"].iloc[i]),
            field="doc_ground_truth_politifact_label",
        )
    frame = pd.DataFrame({"text": texts[real], "name": judgments["statement_id"].to_numpy()[real]})
    counts = frame.groupby(["text", "name"]).size().reset_index(name="n")
    counts = counts.sort_values(["text", "n", "name"], ascending=[True, False, True])
    ids: dict[str, str] = {}
    used: set[str] = set()
    for text, name in counts.drop_duplicates("text")[["text", "name"]].itertuples(index=False):
        candidate, k = name, 2
        while candidate in used:
            candidate, k = f"{name}#{k}", k + 1
        ids[text] = candidate
        used.add(candidate)
    statement_id = judgments["statement_id"].to_numpy(dtype=object).copy()
    statement_id[real] = [ids[t] for t in texts[real]]
    party = [lv[3] if lv is not None else None for lv in levels]
    levels = [
        (str(shown_dataset[i]), int(shown[i]), 6 if shown_dataset[i] == "politifact" else 3, party[i])
        if real[i]
        else lv
        for i, lv in enumerate(levels)
    ]
    renamed = int((statement_id != judgments["statement_id"].to_numpy(dtype=object)).sum())
    n_names = len(set(judgments["statement_id"].to_numpy()[real]))
    judgments = judgments.assign(statement_id=statement_id)
    order = np.lexsort((judgments["position"].to_numpy(), judgments["worker_id"].to_numpy(dtype=str)))
    seen = pd.DataFrame({"w": judgments["worker_id"].to_numpy()[order], "s": statement_id[order]})
    repeated = np.zeros(len(judgments), dtype=bool)
    repeated[order] = seen.duplicated().to_numpy()
    _decide(
        decisions,
        f"key='statement': {len(ids)} statement texts (normalised) from {n_names} doc_names; each text's id is its "
        "most frequent doc_name; "
        f"expert levels from the label columns (the statement shown); {renamed} row(s) re-keyed",
    )
    if repeated.any():
        workers = sorted(set(judgments["worker_id"].to_numpy()[repeated]), key=lambda w: (len(w), w))
        _decide(
            decisions,
            f"key='statement': {len(workers)} worker(s) saw the same text twice ({', '.join(workers[:9])}"
            f"{', ...' if len(workers) > 9 else ''}): kept the judgment at the earlier position, dropped "
            f"{int(repeated.sum())} row(s)",
            warn=True,
        )
    keep = ~repeated
    levels = [lv for lv, k in zip(levels, keep, strict=True) if k]
    return raw[keep].reset_index(drop=True), judgments[keep].reset_index(drop=True), levels


def _ipm_statements(
    raw: pd.DataFrame, judgments: pd.DataFrame, levels: list[tuple[str, int, int, str] | None]
) -> pd.DataFrame:
    """One row per statement id: dataset, text and speaker (most frequent), expert label and scale."""
    frame = pd.DataFrame(
        {
            "statement_id": judgments["statement_id"].to_numpy(),
            "text": raw["doc_statement"].to_numpy(dtype=object) if "doc_statement" in raw else None,
            "speaker": raw["doc_claimant"].to_numpy(dtype=object) if "doc_claimant" in raw else None,
            "date": raw["doc_date"].to_numpy(dtype=object) if "doc_date" in raw else None,
            "verdict": raw["doc_ground_truth_abc_verdict"].to_numpy(dtype=object)
            if "doc_ground_truth_abc_verdict" in raw
            else None,
        }
    )
    grouped = frame.groupby("statement_id", sort=True)
    out = grouped.agg({"text": _mode, "speaker": _mode, "date": _mode, "verdict": _mode})
    out["n_judgments"] = grouped.size()
    info = {}
    for sid, lv in zip(judgments["statement_id"], levels, strict=True):
        info[sid] = lv
    out["dataset"] = [info[s][0] if info[s] else "gold" for s in out.index]
    out["party"] = [info[s][3] if info[s] else None for s in out.index]
    out["gt_value"] = pd.array([info[s][1] if info[s] else pd.NA for s in out.index], dtype="Int8")
    out["gt_scale"] = pd.array([info[s][2] if info[s] else pd.NA for s in out.index], dtype="Int8")
    out["gt_label"] = [
        (_PF_LABELS if info[s][0] == "politifact" else _ABC_LABELS)[info[s][1]] if info[s] else None for s in out.index
    ]
    out["gt_norm"] = gt_norm(
        out["gt_value"].to_numpy(dtype=float, na_value=np.nan), out["gt_scale"].to_numpy(dtype=float, na_value=np.nan)
    )
    out["broken"] = out.index.isin(BROKEN_STATEMENTS)
    out["dataset"] = pd.Categorical(out["dataset"], categories=["politifact", "abc", "gold"])
    out.index.name = "statement_id"
    return out[
        [
            "dataset",
            "text",
            "speaker",
            "party",
            "date",
            "gt_label",
            "gt_value",
            "gt_scale",
            "gt_norm",
            "verdict",
            "n_judgments",
            "broken",
        ]
    ]


def _ipm_workers(
    raw: pd.DataFrame, judgments: pd.DataFrame, full: bool, path: str, decisions: list[str]
) -> pd.DataFrame:
    """One row per worker: demographics, CRT answers and score, questionnaire times, try number."""
    worker = judgments["worker_id"].to_numpy()
    table = pd.DataFrame({"worker_id": worker})
    table["n_judgments"] = 1
    table["try_number"] = judgments["try_number"].array
    if full:
        for name in _DEMOGRAPHICS:
            table[f"{name}_answer"] = raw[f"q_0_{name}_answer"].to_numpy(dtype=object)
            table[f"{name}_value"] = _numeric(raw, f"q_0_{name}_value", path).to_numpy()
        crt = np.zeros(len(raw))
        for column, correct in _CRT:
            values = _numeric(raw, column, path).to_numpy()
            table["crt_" + column[4:].removesuffix("_value")] = values
            crt += values == correct
        table["crt_score"] = crt.astype(np.int8)
        for q in range(4):
            table[f"q{q}_time_elapsed_s"] = _numeric(raw, f"q_{q}_time_elapsed", path).to_numpy()
        if "tries_amount" in raw:
            table["tries_allowed"] = _numeric(raw, "tries_amount", path, integer=True).to_numpy()
    return _one_row_per_worker(table, decisions)


def _one_row_per_worker(table: pd.DataFrame, decisions: list[str]) -> pd.DataFrame:
    """Collapse a per-judgment table of worker attributes to one row per worker (first row kept, logged when a
    worker's rows disagree), with `n_judgments` first and workers in natural order (`w2` before `w10`)."""
    constant = [c for c in table.columns if c not in ("worker_id", "n_judgments")]
    grouped = table.groupby("worker_id", sort=False)
    varying = [c for c in constant if (grouped[c].nunique(dropna=False) > 1).any()]
    if varying:
        _decide(
            decisions,
            f"worker-level column(s) differ between a worker's rows: {', '.join(varying)} (first row kept)",
            warn=True,
        )
    workers = grouped[constant].first()
    workers.insert(0, "n_judgments", grouped.size())
    workers = workers.loc[sorted(workers.index, key=lambda w: (len(w), w))]
    workers.index.name = "worker_id"
    return workers


def load_sigir2020(directory: str | PathLike[str]) -> pd.DataFrame:
    """The SIGIR2020 statement metadata (`Politifact.csv`, `ABC.csv`): 180 statements with expert labels.

    Columns: `source_id` (LIAR json id or ABC article id), `dataset`, `text`, `speaker`, `year`, `party`,
    `gt_label` (normalised, lower-case), `gt_value`, `gt_scale`, `gt_norm`, `verdict` (ABC only).
    """
    directory = Path(directory)
    frames = []
    for name, dataset, mapping, k in (
        ("Politifact.csv", "politifact", _PF_LABEL_VALUE, 6),
        ("ABC.csv", "abc", _ABC_LABEL_VALUE, 3),
    ):
        path = directory / name
        raw = read_csv_records(path)
        for column in ("statement_id", "statement", "speaker", "year", "party", "label"):
            if column not in raw.columns:
                raise InputError("missing required column", path=path, line=1, field=column)
        label = raw["label"].str.strip().str.lower().str.replace("_", "-")
        value = label.map(mapping)
        if value.isna().any():
            i = int(np.flatnonzero(value.isna().to_numpy())[0])
            raise InputError(
                f"unknown {dataset} label {raw['label'].iloc[i]!r} (row {i})",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="label",
            )
        frames.append(
            pd.DataFrame(
                {
                    "source_id": raw["statement_id"].to_numpy(dtype=object),
                    "dataset": dataset,
                    "text": raw["statement"].to_numpy(dtype=object),
                    "speaker": raw["speaker"].to_numpy(dtype=object),
                    "year": _numeric(raw, "year", str(path), integer=True).astype("Int16").to_numpy(),
                    "party": raw["party"].to_numpy(dtype=object),
                    "gt_label": label.to_numpy(dtype=object),
                    "gt_value": value.astype("Int8").to_numpy(),
                    "gt_scale": k,
                    "verdict": raw["verdict"].to_numpy(dtype=object) if "verdict" in raw else None,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["gt_norm"] = gt_norm(out["gt_value"].to_numpy(dtype=float), out["gt_scale"].to_numpy(dtype=float))
    return out


#: SIGIR 2020 crowd files: the scale of each prefix (S3 0..2, S6 0..5, S100 0..100).
SIGIR2020_PREFIXES: tuple[str, ...] = ("S3", "S6", "S100")
_SIGIR_BACKGROUND = ("age", "degree", "money", "consideration", "political_views", "southern_border", "climate")
_SIGIR_CRT = (("cognitive_1", 3.0), ("cognitive_2", 9.0), ("cognitive_3", 4.0))
_SIGIR_SOURCES = {"politifact": "politifact", "abc": "abc", "gold_question": "gold"}
DUPLICATE_UNIT_POLICIES: tuple[str, ...] = ("first", "separate", "refuse")


def _sigir_prefix(raw: pd.DataFrame, path: str) -> str:
    found = [c.removesuffix("_truth_level") for c in raw.columns if c.endswith("_truth_level")]
    if len(found) != 1:
        raise InputError(
            f"not a SIGIR 2020 crowd file: expected one '<S3|S6|S100>_truth_level' column, found {found or 'none'}",
            path=path,
            line=1,
            field="S6_truth_level",
        )
    return found[0]


def _hit_numbers(units: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Which HIT of its unit each row belongs to (1, 2, ...): a unit's HIT restarts when, in file order, its
    position does not increase."""
    frame = pd.DataFrame({"unit": units, "position": positions})
    previous = frame.groupby("unit", sort=False)["position"].shift()
    starts = (previous.isna() | (frame["position"] <= previous)).astype(int)
    return starts.groupby(frame["unit"], sort=False).cumsum().to_numpy()


def load_sigir2020_crowd(
    source: Source | None = "S6",
    *,
    scale: Scale | None = None,
    metadata: str | PathLike[str] | bool | None = None,
    duplicate_units: Literal["first", "separate", "refuse"] = "first",
) -> CrowdData:
    """Load a SIGIR 2020 crowd file (`S3.csv`, `S6.csv`, `S100.csv`; one row per (HIT, statement), wide) in one call.

    `source` is a path, a DataFrame, or `"S3"`/`"S6"`/`"S100"` for the released file found by
    `truth_crowd.released_data.find_data_file` (fetched with `truth-crowd data fetch`, or `$REPRO_SHARED_DATA`).
    The column prefix (`S3_`, `S6_`, `S100_`) gives the scale unless `scale` is given. The answer is the item
    `overall_truthfulness` (on the file's scale, not -2..2); statements are keyed by `name_unique` (the authors'
    `doc_name`, from which the expert level comes), workers by `unit_id`. Gold rows (`HIGH`, `LOW`: empty
    `name_unique`, `source=gold_question`) are kept with `dataset="gold"`, `is_gold` and `gold_kind`, so
    `GoldCheck` tests LOW < HIGH and `CrowdData.real()` drops them. Worker background (`age` ... `climate`, the CRT
    answers and `crt_score`) goes to `workers`; `evidence_url`/`evidence_query` are the search engine's URL and
    query; `try_number` is `11 - amount_try` (the file counts tries left, from 10).

    `metadata`: the folder of `Politifact.csv`/`ABC.csv` (default: beside the file or its parent, else the released
    copy; False: none): statements gain `source_id`, the metadata text, and a check that the metadata label agrees
    with the `name_unique` level (disagreements logged).

    A `unit_id` that occurs in two HITs (its positions restart) is handled by `duplicate_units`: `"first"` (default)
    keeps its first HIT and logs the rows dropped; `"separate"` keeps every HIT as a separate coder
    (`unit_5`, `unit_5#2`, ...); `"refuse"` raises `InputError` at the first row of the second HIT.
    """
    if duplicate_units not in DUPLICATE_UNIT_POLICIES:
        raise ValueError(f"duplicate_units must be one of {DUPLICATE_UNIT_POLICIES}, got {duplicate_units!r}")
    if source is None or (isinstance(source, str) and source.upper() in SIGIR2020_PREFIXES):
        from truth_crowd.released_data import HOW_TO_GET_DATA, find_data_file

        name = "S6" if source is None else source.upper()
        found = find_data_file(f"SIGIR2020/crowd/{name}.csv")
        if found is None:
            raise InputError(f"the SIGIR 2020 file {name}.csv is not on this machine: {HOW_TO_GET_DATA}")
        source = found
    path = _source_name(source)
    raw = _read_records(source)
    prefix = _sigir_prefix(raw, path)
    if scale is None:
        if prefix.lower() not in NAMED_SCALES:
            raise InputError(f"unknown scale prefix {prefix!r}: pass scale=", path=path, line=1)
        scale = NAMED_SCALES[prefix.lower()]
    column = {
        "position": f"{prefix}_document_position",
        "tries_left": f"{prefix}_amount_try",
        "time": f"{prefix}_time_elapsed",
        "answer": f"{prefix}_truth_level",
        "query": f"{prefix}_binger_query",
        "url": f"{prefix}_binger_url",
    }
    required = ["unit_id", "statement_id", "name_unique", "source", column["position"], column["answer"]]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise InputError(
            f"not a SIGIR 2020 crowd file: missing column(s) {', '.join(map(repr, missing))}",
            path=path,
            line=1,
            field=missing[0],
        )
    _require_records(raw, path, line=2 if path != "<DataFrame>" else 1)
    decisions: list[str] = []
    _decide(
        decisions, f"{path}: {len(raw)} rows x {raw.shape[1] - 1} columns (SIGIR 2020 {prefix}, {scale.describe()})"
    )
    for name in ("unit_id", "source"):
        raw[name] = raw[name].map(_strip_or_none)
        empty = raw[name].isna().to_numpy()
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise InputError(f"empty value (row {i})", path=path, line=int(raw["_line"].iloc[i]), field=name)
    sources = raw["source"].str.lower().map(_SIGIR_SOURCES)
    if sources.isna().any():
        i = int(np.flatnonzero(sources.isna().to_numpy())[0])
        raise InputError(
            f"source {raw['source'].iloc[i]!r} is not Politifact, ABC or gold_question (row {i})",
            path=path,
            line=int(raw["_line"].iloc[i]),
            field="source",
        )
    position = _numeric(raw, column["position"], path, integer=True, allow_missing=False).to_numpy()
    if (position < 0).any():
        i = int(np.flatnonzero(position < 0)[0])
        raise InputError(
            f"position must be >= 0 (row {i})", path=path, line=int(raw["_line"].iloc[i]), field=column["position"]
        )
    units = raw["unit_id"].to_numpy(dtype=object)
    hits = _hit_numbers(units, position)
    repeated = hits > 1
    if repeated.any():
        twice = sorted(set(units[repeated]), key=lambda u: (len(u), u))
        first_line = int(raw["_line"].iloc[int(np.flatnonzero(repeated)[0])])
        if duplicate_units == "refuse":
            raise InputError(
                f"unit {units[repeated][0]!r} occurs in two HITs (its positions restart); pass "
                "duplicate_units='first' or 'separate'",
                path=path,
                line=first_line,
                field="unit_id",
            )
        if duplicate_units == "first":
            _decide(
                decisions,
                f"{len(twice)} unit(s) occur in more than one HIT ({', '.join(twice[:5])}"
                f"{', ...' if len(twice) > 5 else ''}): kept each one's first HIT, dropped {int(repeated.sum())} "
                f"row(s) from line {first_line} (duplicate_units='first')",
                warn=True,
            )
            raw = raw[~repeated].reset_index(drop=True)
            sources, position, hits = sources[~repeated].reset_index(drop=True), position[~repeated], hits[~repeated]
            units = units[~repeated]
        else:
            units = np.array([u if h == 1 else f"{u}#{h}" for u, h in zip(units, hits, strict=True)], dtype=object)
            _decide(
                decisions,
                f"{len(twice)} unit(s) occur in more than one HIT ({', '.join(twice[:5])}"
                f"{', ...' if len(twice) > 5 else ''}): each later HIT is a separate coder '<unit>#<n>' "
                "(duplicate_units='separate')",
                warn=True,
            )
    dataset = sources.to_numpy(dtype=object)
    is_gold = dataset == "gold"
    names = raw["name_unique"].map(_strip_or_none)
    gold_names = raw["statement_id"].map(_strip_or_none)
    bad_gold = is_gold & ~gold_names.isin(_GOLD).to_numpy()
    if bad_gold.any():
        i = int(np.flatnonzero(bad_gold)[0])
        raise InputError(
            f"gold row with statement_id {gold_names.iloc[i]!r} (expected HIGH or LOW) (row {i})",
            path=path,
            line=int(raw["_line"].iloc[i]),
            field="statement_id",
        )
    statement_id = np.where(is_gold, gold_names.to_numpy(dtype=object), names.to_numpy(dtype=object))
    levels = [None if g else expert_level(n or "") for g, n in zip(is_gold, statement_id, strict=True)]
    for i in np.flatnonzero(~is_gold):
        if levels[i] is None or levels[i][0] != dataset[i]:
            raise InputError(
                f"name_unique {statement_id[i]!r} of a {raw['source'].iloc[i]} row is not of the form "
                "{DEM|REP}_{LEVEL}_docN (Politifact) or {Labor|Liberal}_{LEVEL}_docN (ABC) (row "
                f"{i})",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="name_unique",
            )
    judgments = pd.DataFrame(
        {
            "worker_id": units,
            "statement_id": statement_id,
            "statement_text": raw["statement"].to_numpy(dtype=object) if "statement" in raw else None,
            "dataset": pd.Categorical(dataset, categories=["politifact", "abc", "gold"]),
            "position": position.astype("int16"),
            "is_gold": is_gold,
            "gold_kind": pd.array(np.where(is_gold, statement_id, None), dtype="string"),
            "overall_truthfulness": _scale_column(raw, column["answer"], scale, path).array,
            "time_elapsed_s": _numeric(raw, column["time"], path).to_numpy() if column["time"] in raw else np.nan,
            "accesses": pd.array([pd.NA] * len(raw), dtype="Int32"),
            "evidence_url": pd.array(
                raw[column["url"]].to_numpy(dtype=object) if column["url"] in raw else [None] * len(raw),
                dtype="string",
            ),
            "evidence_query": pd.array(
                raw[column["query"]].to_numpy(dtype=object) if column["query"] in raw else [None] * len(raw),
                dtype="string",
            ),
            "try_number": (
                (11 - _numeric(raw, column["tries_left"], path, integer=True)).astype("Int16").array
                if column["tries_left"] in raw
                else pd.array([pd.NA] * len(raw), dtype="Int16")
            ),
            "hit": hits.astype("int16"),
        }
    )
    shown = np.full(len(raw), np.nan)
    for label_column, mapping in (("politifact_label", _PF_LABEL_VALUE), ("abc_label", _ABC_LABEL_VALUE)):
        if label_column in raw:
            labels = raw[label_column].map(_strip_or_none).str.lower().str.replace("_", "-")
            mapped = labels.map(mapping).to_numpy(dtype=float, na_value=np.nan)
            shown = np.where(np.isnan(shown), mapped, shown)
    named = np.array([lv[1] if lv is not None else np.nan for lv in levels], dtype=float)
    mismatch = ~np.isnan(named) & ~np.isnan(shown) & (shown != named)
    judgments["shown_level_mismatch"] = mismatch
    if mismatch.any():
        _decide(
            decisions,
            f"{int(mismatch.sum())} row(s) whose label column names another level than their name_unique, flagged "
            "in shown_level_mismatch",
            warn=True,
        )
    judgments["_line"] = raw["_line"].to_numpy()
    validate_judgments(judgments, scale=scale, items=("overall_truthfulness",), path=path)
    judgments = judgments.drop(columns="_line")
    statements = _sigir_statements(raw, judgments, levels, path, metadata, decisions, scale)
    workers = _sigir_workers(raw, judgments, prefix, path, decisions)
    return CrowdData(
        judgments=judgments,
        statements=statements,
        workers=workers,
        items=("overall_truthfulness",),
        decisions=decisions,
        source=path,
        source_columns=raw.shape[1] - 1,
        scale=scale,
    )


def _sigir_metadata_folder(path: str, metadata: str | PathLike[str] | bool | None) -> Path | None:
    if metadata is False:
        return None
    if metadata not in (None, True):
        return Path(metadata)  # type: ignore[arg-type]
    if path != "<DataFrame>":
        for folder in (Path(path).parent, Path(path).parent.parent):
            if (folder / "Politifact.csv").is_file() and (folder / "ABC.csv").is_file():
                return folder
    from truth_crowd.released_data import find_data_file

    found = find_data_file("SIGIR2020/Politifact.csv")
    return found.parent if found is not None and (found.parent / "ABC.csv").is_file() else None


def _sigir_statements(
    raw: pd.DataFrame,
    judgments: pd.DataFrame,
    levels: list[tuple[str, int, int, str] | None],
    path: str,
    metadata: str | PathLike[str] | bool | None,
    decisions: list[str],
    scale: Scale,
) -> pd.DataFrame:
    """One row per statement (name_unique, plus HIGH/LOW): the expert level from the name (`gt_norm` on the crowd's
    scale range), the crowd file's text and ids, joined to the SIGIR 2020 metadata when found."""
    frame = pd.DataFrame(
        {
            "statement_id": judgments["statement_id"].to_numpy(),
            "source_id": raw["statement_id"].map(_strip_or_none).to_numpy(dtype=object),
            "text": raw["statement"].to_numpy(dtype=object) if "statement" in raw else None,
            "speaker": raw["speaker"].to_numpy(dtype=object) if "speaker" in raw else None,
            "date": raw["year"].to_numpy(dtype=object) if "year" in raw else None,
        }
    )
    grouped = frame.groupby("statement_id", sort=True)
    out = grouped.agg({"source_id": _mode, "text": _mode, "speaker": _mode, "date": _mode})
    out["n_judgments"] = grouped.size()
    info = dict(zip(judgments["statement_id"], levels, strict=True))
    out["dataset"] = pd.Categorical(
        [info[s][0] if info[s] else "gold" for s in out.index], categories=["politifact", "abc", "gold"]
    )
    out["party"] = [info[s][3] if info[s] else None for s in out.index]
    out["gt_value"] = pd.array([info[s][1] if info[s] else pd.NA for s in out.index], dtype="Int8")
    out["gt_scale"] = pd.array([info[s][2] if info[s] else pd.NA for s in out.index], dtype="Int8")
    out["gt_label"] = [
        (_PF_LABELS if info[s][0] == "politifact" else _ABC_LABELS)[info[s][1]] if info[s] else None for s in out.index
    ]
    low, high = (scale.low, scale.high) if scale.discrete and not scale.nominal else (np.nan, np.nan)
    out["gt_norm"] = gt_norm(
        out["gt_value"].to_numpy(dtype=float, na_value=np.nan),
        out["gt_scale"].to_numpy(dtype=float, na_value=np.nan),
        low=low,
        high=high,
    )
    out["verdict"] = None
    out["broken"] = False
    folder = _sigir_metadata_folder(path, metadata)
    if folder is None:
        _decide(
            decisions,
            "SIGIR 2020 metadata (Politifact.csv, ABC.csv) not found: statements keep the crowd "
            "file's text; expert levels come from name_unique",
        )
    else:
        meta = load_sigir2020(folder).set_index("source_id")
        real = out["dataset"] != "gold"
        joined = meta.reindex(out.loc[real, "source_id"])
        matched = joined["gt_value"].notna().to_numpy()
        agree = matched & (
            joined["gt_value"].to_numpy(dtype=float, na_value=np.nan)
            == out.loc[real, "gt_value"].to_numpy(dtype=float, na_value=np.nan)
        )
        out.loc[real, "metadata_text"] = joined["text"].to_numpy(dtype=object)
        out.loc[real, "verdict"] = joined["verdict"].to_numpy(dtype=object)
        out.loc[real, "metadata_agrees"] = agree
        _decide(
            decisions,
            f"joined to the SIGIR 2020 metadata in {folder}: {int(matched.sum())} of {int(real.sum())} statements "
            f"matched by statement_id, {int(agree.sum())} with the same expert level as their name_unique",
            warn=int(agree.sum()) < int(real.sum()),
        )
    out.index.name = "statement_id"
    return out


def _sigir_workers(
    raw: pd.DataFrame, judgments: pd.DataFrame, prefix: str, path: str, decisions: list[str]
) -> pd.DataFrame:
    """One row per worker (coder): background answers, CRT answers and score, try number."""
    table = pd.DataFrame({"worker_id": judgments["worker_id"].to_numpy()})
    table["try_number"] = judgments["try_number"].array
    for name in _SIGIR_BACKGROUND:
        if f"{prefix}_{name}" in raw:
            table[f"{name}_answer"] = raw[f"{prefix}_{name}"].to_numpy(dtype=object)
    if all(f"{prefix}_{c}" in raw for c, _ in _SIGIR_CRT):
        crt = np.zeros(len(raw))
        for name, correct in _SIGIR_CRT:
            values = _numeric(raw, f"{prefix}_{name}", path).to_numpy()
            table[f"crt_{name}"] = values
            crt += values == correct
        table["crt_score"] = crt.astype(np.int8)
    return _one_row_per_worker(table, decisions)


def load_csv(
    source: Source,
    *,
    layout: Literal["long", "wide"] = "long",
    columns: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    scale: Scale = LIKERT5,
) -> CrowdData:
    """Load judgments from any CSV, renaming columns with `columns` (our name -> the file's name).

    `layout="long"`: one row per (worker, statement, item) with `worker_id, statement_id, item, value`;
    `layout="wide"`: one row per (worker, statement) with one column per item (`items`, default: every column that
    is not an id or an optional field). Optional fields: `position, time_elapsed_s, evidence_url, try_number,
    dataset`. Values must be numbers on `scale`; duplicates and non-numeric values raise `InputError` with the line.
    """
    if layout not in ("long", "wide"):
        raise ValueError(f"layout must be 'long' or 'wide', got {layout!r}")
    return _load_table(_read_records(source), _source_name(source), layout, columns, items, scale)


def read_parquet_records(source: str | PathLike[str]) -> pd.DataFrame:
    """Read a Parquet file (pandas with pyarrow, the `[parquet]` extra) into a frame with a `_line` column.

    `_line` is the 1-based row number, which is what errors name for Parquet input. Ids stay as read; nested or
    binary cells, an unreadable file and a reserved `_line` column raise `InputError`.
    """
    from repro_core.optional import require

    name = _source_name(source)
    require("pyarrow", "reading Parquet files", extra="parquet", distribution="truth-crowd")
    try:
        frame = pd.read_parquet(source, engine="pyarrow")
    except (OSError, ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"not a readable Parquet file: {exc}", path=name) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if "_line" in frame.columns:
        raise InputError("the column name '_line' is reserved", path=name, field="_line")
    if len(set(frame.columns)) != len(frame.columns) or any(c == "" for c in frame.columns):
        raise InputError("duplicate or empty column names", path=name)
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            bad = ~values.map(lambda v: v is None or isinstance(v, str | int | float | bool | np.number))
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"non-scalar cell of type {type(values.iloc[i]).__name__} (row {i + 1})",
                    path=name,
                    line=i + 1,
                    field=column,
                )
        if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
            frame[column] = values.astype(object).where(values.notna(), None)
            frame[column] = frame[column].map(lambda v: None if isinstance(v, str) and v == "" else v)
    frame["_line"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return frame


def load_parquet(
    source: str | PathLike[str],
    *,
    layout: Literal["long", "wide"] = "long",
    columns: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    scale: Scale = LIKERT5,
) -> CrowdData:
    """`load_csv` for a Parquet file (needs pyarrow: `pip install 'truth-crowd[parquet]'`); errors name the row."""
    if layout not in ("long", "wide"):
        raise ValueError(f"layout must be 'long' or 'wide', got {layout!r}")
    return _load_table(read_parquet_records(source), _source_name(source), layout, columns, items, scale)


def load_table(
    source: str | PathLike[str] | pd.DataFrame,
    *,
    layout: Literal["long", "wide", "sigir2020"] = "long",
    columns: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    scale: Scale | None = None,
    duplicate_units: Literal["first", "separate", "refuse"] = "first",
) -> CrowdData:
    """`load_parquet` for `.parquet`/`.pq` files, `load_csv` otherwise (a DataFrame as well as a path);
    `layout="sigir2020"` is `load_sigir2020_crowd` (its scale from the file's `S3_`/`S6_`/`S100_` prefix)."""
    if layout == "sigir2020":
        if columns:
            raise ValueError("columns= does not apply to layout='sigir2020' (its columns are fixed)")
        return load_sigir2020_crowd(source, scale=scale, duplicate_units=duplicate_units)
    scale = LIKERT5 if scale is None else scale
    parquet = not isinstance(source, pd.DataFrame) and Path(source).suffix.lower() in (".parquet", ".pq")
    loader = load_parquet if parquet else load_csv
    return loader(source, layout=layout, columns=columns, items=items, scale=scale)  # type: ignore[arg-type]


def _load_table(
    raw: pd.DataFrame,
    path: str,
    layout: str,
    columns: Mapping[str, str] | None,
    items: Sequence[str] | None,
    scale: Scale,
) -> CrowdData:
    """Shared body of the generic loaders: `raw` has the file's columns (strings or numbers) and `_line`."""
    rename: dict[str, str] = {}
    for ours, theirs in (columns or {}).items():
        if theirs in rename:
            raise InputError(
                f"column mapping collision: {rename[theirs]!r} and {ours!r} both map to the file's column {theirs!r}",
                path=path,
                line=1,
                field=theirs,
            )
        rename[theirs] = ours
    for theirs, ours in rename.items():
        if theirs not in raw.columns:
            raise InputError(
                f"column {theirs!r} named in the column mapping is not in the file", path=path, line=1, field=theirs
            )
        if ours != theirs and ours in raw.columns and ours not in rename:
            raise InputError(
                f"column mapping collision: {ours}={theirs} renames {theirs!r} to {ours!r}, but the file already has "
                f"a column {ours!r} (map that one to another name too, or drop it first)",
                path=path,
                line=1,
                field=ours,
            )
    raw = raw.rename(columns=rename)
    optional = ("position", "time_elapsed_s", "evidence_url", "try_number", "dataset")
    required = ["worker_id", "statement_id"] + (["item", "value"] if layout == "long" else [])
    for column in required:
        if column not in raw.columns:
            raise InputError(
                f"missing required column {column!r} (map it with columns=)", path=path, line=1, field=column
            )
    _require_records(raw, path, line=1 if path.lower().endswith((".parquet", ".pq")) else 2)
    ids = ("worker_id", "statement_id", *(["item"] if layout == "long" else []))
    for column in (*ids, *(["dataset"] if "dataset" in raw.columns else [])):
        # Ids are strings (Parquet may hold them as numbers: 7 -> "7"), without surrounding whitespace:
        # " w1" and "w1" are one worker.
        raw[column] = raw[column].map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v) else str(v))
        raw[column] = raw[column].where(raw[column].notna(), None).map(lambda v: _strip_or_none(v))
    for column in ids:
        empty = raw[column].isna()
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise InputError(f"empty value (row {i})", path=path, line=int(raw["_line"].iloc[i]), field=column)
    if layout == "long":
        values = _scale_column(raw, "value", scale, path)
        missing = values.isna()
        if missing.any():
            i = int(np.flatnonzero(missing.to_numpy())[0])
            raise InputError(
                f"missing value (row {i}); leave the row out instead",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="value",
            )
        raw["value"] = values
        dup = raw.duplicated(["worker_id", "statement_id", "item"]).to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise InputError(
                f"duplicate (worker_id, statement_id, item) = ({raw['worker_id'].iloc[i]!r}, "
                f"{raw['statement_id'].iloc[i]!r}, {raw['item'].iloc[i]!r}) (row {i})",
                path=path,
                line=int(raw["_line"].iloc[i]),
                field="item",
            )
        item_names = tuple(dict.fromkeys(raw["item"]))
        judgments = raw.pivot(index=["worker_id", "statement_id"], columns="item", values="value")
        judgments = judgments.reindex(columns=list(item_names)).reset_index()
        judgments.columns.name = None
        first = raw.groupby(["worker_id", "statement_id"], sort=False).first()
        for column in optional:
            if column in raw.columns:
                judgments[column] = first.loc[
                    list(zip(judgments["worker_id"], judgments["statement_id"], strict=True)), column
                ].to_numpy()
        judgments["_line"] = first.loc[
            list(zip(judgments["worker_id"], judgments["statement_id"], strict=True)), "_line"
        ].to_numpy()
    else:
        taken = {"worker_id", "statement_id", "_line", *optional}
        item_names = tuple(items) if items is not None else tuple(c for c in raw.columns if c not in taken)
        if not item_names:
            raise InputError("no item columns in a wide file", path=path, line=1)
        for item in item_names:
            if item not in raw.columns:
                raise InputError("missing item column", path=path, line=1, field=item)
            raw[item] = _scale_column(raw, item, scale, path)
        judgments = raw[
            ["worker_id", "statement_id", *item_names, *[c for c in optional if c in raw.columns], "_line"]
        ].copy()
    for column, integer in (("position", True), ("time_elapsed_s", False), ("try_number", True)):
        if column in judgments.columns:
            judgments[column] = _numeric(judgments, column, path, integer=integer).to_numpy()
    if "dataset" not in judgments.columns:
        judgments["dataset"] = "unknown"
    judgments["is_gold"] = False
    for item in item_names:
        judgments[item] = pd.array(judgments[item].to_numpy(dtype=float, na_value=np.nan), dtype="Float64")
        judgments[item] = judgments[item].astype(scale.dtype)
    validate_judgments(judgments, scale=scale, items=item_names, path=path)
    judgments = judgments.drop(columns="_line").reset_index(drop=True)
    statements = judgments.groupby("statement_id").agg(dataset=("dataset", "first"), n_judgments=("worker_id", "size"))
    workers = judgments.groupby("worker_id").agg(n_judgments=("statement_id", "size"))
    decisions = [f"{path}: {len(raw)} {layout} rows -> {len(judgments)} judgments, {len(item_names)} item(s)"]
    logger.info(decisions[0])
    return CrowdData(
        judgments=judgments,
        statements=statements,
        workers=workers,
        items=item_names,
        decisions=decisions,
        source=path,
        source_columns=raw.shape[1] - 1,
        scale=scale,
    )


def find_shared_data(start: str | PathLike[str] | None = None) -> Path | None:
    """The project's `shared/data` folder: `$REPRO_SHARED_DATA`, else `../shared/data` beside the repository.

    Searched upwards from `start` (default: this file, then the working directory); None when absent, so a
    reproduction can fall back to simulated data.
    """
    import os

    env = os.environ.get("REPRO_SHARED_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    starts = [Path(start)] if start is not None else [Path(__file__).resolve(), Path.cwd().resolve()]
    for origin in starts:
        for parent in [origin, *origin.parents]:
            candidate = parent / "shared" / "data"
            if (candidate / "truth-crowd").is_dir():
                return candidate
    return None
