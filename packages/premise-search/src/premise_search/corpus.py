"""Lean declarations and their JSONL files: our corpus rows and LeanSearch v2's corpus rows.

Two row shapes are read, each one JSON object per line (optionally gzip-compressed, by the `.gz` suffix):

- ours (the project corpus and `write_jsonl(style="native")`): `name` (dotted str), `kind`, `module`,
  `signature`, `docstring`, `line`, `source`, and the optional `deprecated`, `generated`, `generated_from`,
  `name_guessed`, `value`, `type`, `informal_name`, `informal_description`, `deps`, `index`;
- LeanSearch v2 (`write_jsonl(style="lsv2")`): `name` and `module_name` as lists of name components, `kind`
  (`definition` for our `def`), `type`, `index`, `signature`, `value`, `informal_name`, `informal_description`.

Readers accept both (a list `name` is joined with dots) and ignore unknown fields, so a corpus from either
pipeline loads unchanged. The corpus hash (`corpus_sha256`) is what index manifests use to detect staleness.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from repro_core.checkpoint import atomic_write_bytes
from repro_core.errors import InputError

__all__ = [
    "DEFAULT_CORPUS_NAME",
    "KINDS",
    "MATHLIB",
    "Declaration",
    "corpus_sha256",
    "default_corpus_info",
    "default_corpus_path",
    "file_sha256",
    "iter_jsonl",
    "load_default_corpus",
    "read_jsonl",
    "read_text",
    "write_jsonl",
]

logger = logging.getLogger(__name__)

#: The embedded corpus file inside `premise_search/data/`: every declaration of Mathlib at `MATHLIB["commit"]`.
DEFAULT_CORPUS_NAME = "mathlib-full.jsonl.gz"
#: Provenance of the embedded corpus (see `premise_search/data/README.md`).
MATHLIB = {
    "name": "mathlib",
    "library": "Mathlib",
    "repository": "https://github.com/leanprover-community/mathlib4",
    "commit": "5352afccd6866369be9de43f5b7ec47203555f44",
    "version": "v4.28.0-rc1",
    "licence": "Apache-2.0",
    "n_declarations": 256_190,
    "n_modules": 7_279,
}

#: Declaration kinds we know (others are kept as given). LSv2's `definition` is read as `def`.
KINDS = (
    "theorem",
    "def",
    "abbrev",
    "instance",
    "structure",
    "class",
    "inductive",
    "axiom",
    "opaque",
    "alias",
    "field",
    "constructor",
    "recursor",
)
_KIND_ALIASES = {"definition": "def", "lemma": "theorem", "classInductive": "class", "ctor": "constructor"}
_LSV2_KIND = {"def": "definition"}

Style = Literal["native", "lsv2"]


def _opt_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"expected a string or null, got {type(value).__name__}", field=name)
    return value


@dataclass(frozen=True)
class Declaration:
    """One Lean declaration, the unit of retrieval.

    Attributes:
        name: the fully qualified dotted name (`Finset.sum_image`); LSv2's list form is joined with dots.
        kind: `theorem`, `def`, `instance`, `structure`, `class`, ... (see `KINDS`).
        module: the Lean module (`Mathlib.Algebra.BigOperators.Basic`); "" when unknown.
        signature: the header as written (keyword, name, binders, type), or LSv2's `signature`.
        type: the elaborated type (LSv2 `type`), when the source had one.
        value: the body, for definitions only (LSv2 keeps values of non-Prop declarations).
        docstring: the `/-- ... -/` doc comment, dedented.
        informal_name, informal_description: natural-language text from an informaliser.
        deps: names this declaration refers to (LSv2 `typeReferences`), for the dependency DAG.
        line: 1-based line of the declaration keyword in its file.
        source: where the row comes from (`mathlib4@5352afccd686`).
        deprecated, generated, generated_from, name_guessed: provenance flags of the project corpus.
        index: LSv2's row index, kept for round trips.
    """

    name: str
    kind: str
    module: str = ""
    signature: str = ""
    type: str | None = None
    value: str | None = None
    docstring: str | None = None
    informal_name: str | None = None
    informal_description: str | None = None
    deps: tuple[str, ...] = ()
    line: int | None = None
    source: str | None = None
    deprecated: bool = False
    generated: str | None = None
    generated_from: str | None = None
    name_guessed: bool = False
    index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("a declaration needs a non-empty name", field="name")
        if not isinstance(self.kind, str) or not self.kind:
            raise InputError(f"{self.name}: a declaration needs a non-empty kind", field="kind")
        object.__setattr__(self, "kind", _KIND_ALIASES.get(self.kind, self.kind))
        if not isinstance(self.deps, tuple):
            object.__setattr__(self, "deps", tuple(self.deps))

    @property
    def doc_id(self) -> str:
        """`<module>::<name>`, the id form LeanSearch v2's reasoning mode uses (see `evaluation.short_name`)."""
        return f"{self.module}::{self.name}"

    @property
    def short_name(self) -> str:
        """The last dotted component (`sum_image` of `Finset.sum_image`)."""
        return self.name.rsplit(".", 1)[-1]

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Declaration:
        """Build from a row of our corpus or of LeanSearch v2's (`name`/`module_name` lists); unknown keys ignored.

        Raises `InputError` naming the field when a known field has the wrong type.
        """
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}")
        name = row.get("name")
        if isinstance(name, list):
            if not name or not all(isinstance(p, str) for p in name):
                raise InputError("a list name must be non-empty strings", field="name")
            name = ".".join(name)
        if not isinstance(name, str) or not name:
            raise InputError("missing or empty name", field="name")
        module = row.get("module", row.get("module_name", ""))
        if isinstance(module, list):
            module = ".".join(str(p) for p in module)
        if module is None:
            module = ""
        if not isinstance(module, str):
            raise InputError("expected a string or a list of strings", field="module")
        kind = row.get("kind")
        if not isinstance(kind, str) or not kind:
            raise InputError("missing or empty kind", field="kind")
        deps = row.get("deps", row.get("typeReferences", ()))
        if deps is None:
            deps = ()
        if not isinstance(deps, list | tuple) or not all(isinstance(d, str | list) for d in deps):
            raise InputError("expected a list of names", field="deps")
        deps = tuple(".".join(d) if isinstance(d, list) else d for d in deps)
        signature = row.get("signature")
        if signature is None:
            signature = row.get("type") or ""
        line, index = row.get("line"), row.get("index")
        for key, value in (("line", line), ("index", index)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError("expected an integer or null", field=key)
        return cls(
            name=name,
            kind=kind,
            module=module,
            signature=_opt_str(signature, "signature") or "",
            type=_opt_str(row.get("type"), "type"),
            value=_opt_str(row.get("value"), "value"),
            docstring=_opt_str(row.get("docstring"), "docstring"),
            informal_name=_opt_str(row.get("informal_name"), "informal_name"),
            informal_description=_opt_str(row.get("informal_description"), "informal_description"),
            deps=deps,
            line=line,
            source=_opt_str(row.get("source"), "source"),
            deprecated=bool(row.get("deprecated", False)),
            generated=_opt_str(row.get("generated"), "generated"),
            generated_from=_opt_str(row.get("generated_from"), "generated_from"),
            name_guessed=bool(row.get("name_guessed", False)),
            index=index,
        )

    def to_dict(self, style: Style = "native") -> dict[str, Any]:
        """A JSON-ready row: `native` drops empty optional fields; `lsv2` writes LeanSearch v2's field names."""
        if style == "lsv2":
            return {
                "name": self.name.split("."),
                "module_name": self.module.split(".") if self.module else [],
                "kind": _LSV2_KIND.get(self.kind, self.kind),
                "type": self.type if self.type is not None else self.signature,
                "index": self.index,
                "signature": self.signature,
                "value": self.value,
                "docstring": self.docstring,
                "informal_name": self.informal_name,
                "informal_description": self.informal_description,
            }
        if style != "native":
            raise ValueError(f"style: expected 'native' or 'lsv2', got {style!r}")
        row: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "module": self.module,
            "signature": self.signature,
            "docstring": self.docstring,
        }
        for f in dataclasses.fields(self):
            if f.name in row:
                continue
            value = getattr(self, f.name)
            if value is None or value is False or value == ():
                continue
            row[f.name] = list(value) if isinstance(value, tuple) else value
        return row


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file's content; `InputError` naming the line of the first byte that is not UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=path, line=line) from None


def _lines(path: Path) -> Iterator[bytes]:
    """The raw lines of a file, gunzipped when it ends in `.gz`; a damaged gzip stream is an `InputError`.

    Lines are decoded one by one by the caller, so a byte that is not UTF-8 is reported with its line number.
    """
    if path.suffix != ".gz":
        with open(path, "rb") as handle:
            yield from handle
        return
    number = 0
    try:
        with gzip.open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):  # noqa: B007  # the number is read after the loop
                yield raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        reason = "truncated" if isinstance(exc, EOFError) else f"damaged ({exc})"
        raise InputError(f"not a readable gzip file: {reason}", path=path, line=number + 1) from None


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Declaration]:
    """Stream declarations from a JSONL file (`.gz` read as gzip); blank lines are skipped.

    Raises `InputError(path=, line=, field=)` on a line that is not UTF-8, not JSON or not a valid row, and on a
    damaged gzip file.
    """
    path = Path(path)
    for number, raw in enumerate(_lines(path), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start} of the line)", path=path, line=number) from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path=path, line=number) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path=path, line=number) from None
        try:
            yield Declaration.from_dict(row)
        except InputError as exc:
            raise InputError(exc.message, path=path, line=number, field=exc.field) from None


def read_jsonl(path: str | os.PathLike[str]) -> list[Declaration]:
    """All declarations of a JSONL(.gz) file, in file order."""
    return list(iter_jsonl(path))


def write_jsonl(declarations: Iterable[Declaration], path: str | os.PathLike[str], *, style: Style = "native") -> Path:
    """Write one JSON object per line (gzip when `path` ends in `.gz`, with mtime 0 so bytes are reproducible).

    The file appears atomically (temporary file, then rename). Returns the path.
    """
    path = Path(path)
    text = "".join(json.dumps(d.to_dict(style), ensure_ascii=False) + "\n" for d in declarations).encode("utf-8")
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
            gz.write(text)
        text = buffer.getvalue()
    atomic_write_bytes(path, text)
    os.chmod(path, 0o644)  # the temporary file behind the atomic write is created 0600
    return path


def corpus_sha256(declarations: Iterable[Declaration]) -> str:
    """sha256 over the canonical JSON of every row, in order: any change to the corpus changes the hash."""
    digest = hashlib.sha256()
    for decl in declarations:
        digest.update(json.dumps(decl.to_dict("native"), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def default_corpus_path() -> Path:
    """Path of the embedded corpus, all of Mathlib, shipped in the wheel (see `premise_search/data/README.md`)."""
    return Path(str(resources.files("premise_search").joinpath("data", DEFAULT_CORPUS_NAME)))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (1 MiB reads)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def default_corpus_info() -> dict[str, Any]:
    """What the embedded corpus is: `MATHLIB` plus a `label`, the file name, and the sha256 of its bytes.

    The hash identifies the corpus an index was built from without parsing 256k rows at every start.
    """
    path = default_corpus_path()
    if not path.is_file():
        raise InputError("the embedded corpus is missing from this installation", path=path)
    label = f"Mathlib {MATHLIB['version']} ({str(MATHLIB['commit'])[:8]})"
    return {**MATHLIB, "label": label, "file": DEFAULT_CORPUS_NAME, "sha256": file_sha256(path)}


def load_default_corpus() -> list[Declaration]:
    """The embedded corpus: every declaration of Mathlib at commit 5352afcc (v4.28.0-rc1), 256,190 rows.

    Apache-2.0, extracted by a source scanner (no values, no informal text); see `premise_search/data/README.md`.
    Reading it takes a few seconds; `premise_search.index.open_default_index()` loads its cached index instead.
    """
    path = default_corpus_path()
    if not path.is_file():
        raise InputError("the embedded corpus is missing from this installation", path=path)
    return read_jsonl(path)
