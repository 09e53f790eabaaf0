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
    "load_table",
    "read_csv_records",
    "read_parquet_records",
]

logger = logging.getLogger(__name__)

Source = str | PathLike[str] | TextIO

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
_PF_LABEL_VALUE = {label: i for i, label in enumerate(_PF_LABELS)} | {"mostly-false": 2}
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
    if isinstance(source, str | PathLike):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


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
    values = _numeric(frame, column, path)
    bad = values.notna() & ~pd.Series(scale.contains(values.to_numpy()), index=values.index)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"value {_show(frame[column].iloc[i])} is not on the {scale.name} scale {list(scale.values)} (row {i})",
            path=path,
            line=int(frame["_line"].iloc[i]),
            field=column,
        )
    return values.astype("Int8") if all(float(v).is_integer() for v in scale.values) else values


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


def load_ipm2021(source: Source, *, drop_broken: bool = False, scale: Scale = LIKERT5) -> CrowdData:
    """Load `IPM2021/multidimensional.csv`: the 93-column release (commit 7fbe9e7) or the 16-column HEAD copy.

    Statements are keyed by `doc_name` (the authors' identity) and workers by `unit_id`. The expert level comes from
    the `doc_name` level token (`doc_ground_truth_value` is not the expert label and is ignored). Gold rows (HIGH,
    LOW) are kept with `dataset="gold"`; the canonical filter `CrowdData.real()` keeps the 1,799 real rows.

    Known problems (spec 3.3), each recorded in `decisions`: a row with `doc_source=gold_question` but a real
    `doc_name` (unit_114, shown the LOW text) gets `dataset="gold"` so the canonical filter drops it; rows whose label
    columns name another level than their `doc_name` (the DEM_BARELYTRUE_doc7 crossovers) are flagged in
    `shown_level_mismatch`; `drop_broken=True` drops `BROKEN_STATEMENTS` altogether.
    """
    path = _source_name(source)
    raw = read_csv_records(source)
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
    )


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
    order = sorted(workers.index, key=lambda w: (len(w), w))
    workers = workers.loc[order]
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
    return _load_table(read_csv_records(source), _source_name(source), layout, columns, items, scale)


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
    source: str | PathLike[str],
    *,
    layout: Literal["long", "wide"] = "long",
    columns: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    scale: Scale = LIKERT5,
) -> CrowdData:
    """`load_parquet` for `.parquet`/`.pq` files, `load_csv` otherwise."""
    loader = load_parquet if Path(source).suffix.lower() in (".parquet", ".pq") else load_csv
    return loader(source, layout=layout, columns=columns, items=items, scale=scale)


def _load_table(
    raw: pd.DataFrame,
    path: str,
    layout: str,
    columns: Mapping[str, str] | None,
    items: Sequence[str] | None,
    scale: Scale,
) -> CrowdData:
    """Shared body of the generic loaders: `raw` has the file's columns (strings or numbers) and `_line`."""
    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    for theirs in rename:
        if theirs not in raw.columns:
            raise InputError(
                f"column {theirs!r} named in the column mapping is not in the file", path=path, line=1, field=theirs
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
        if all(float(v).is_integer() for v in scale.values):
            judgments[item] = judgments[item].astype("Int8")
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
