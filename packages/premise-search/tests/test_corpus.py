"""Declarations, JSONL in both field layouts, the embedded corpus, and the Lean 4 source scanner."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from premise_search.corpus import (
    Declaration,
    corpus_sha256,
    default_corpus_info,
    default_corpus_path,
    file_sha256,
    load_default_corpus,
    read_jsonl,
    write_jsonl,
)
from premise_search.evaluation import load_mathlib_mpr, load_mathlib_qr
from premise_search.scanner import scan_lean_file, scan_lean_source
from repro_core.errors import InputError

#: The 22,936-declaration Mathlib subset kept for tests (not shipped in the wheel).
SUBSET = Path(__file__).parent / "data" / "mathlib-subset.jsonl.gz"

LSV2_ROW = {
    "name": ["Finset", "sum_image"],
    "module_name": ["Mathlib", "Algebra", "BigOperators"],
    "kind": "definition",
    "type": "∀ ...",
    "index": 7,
    "signature": "(s : Finset α)",
    "value": None,
    "informal_name": "Sum over an image",
    "informal_description": "The sum over the image ...",
}


def test_lsv2_rows_read_and_write_back() -> None:
    decl = Declaration.from_dict(LSV2_ROW)
    assert decl.name == "Finset.sum_image" and decl.module == "Mathlib.Algebra.BigOperators"
    assert decl.kind == "def" and decl.index == 7 and decl.informal_name == "Sum over an image"
    assert decl.doc_id == "Mathlib.Algebra.BigOperators::Finset.sum_image"
    out = decl.to_dict("lsv2")
    assert {k: out[k] for k in LSV2_ROW} == LSV2_ROW


def test_jsonl_round_trip(tmp_path: Path) -> None:
    decls = [
        Declaration(
            "A.b", "theorem", "M.N", "theorem A.b : True", docstring="doc", line=3, deprecated=True, deps=("C",)
        ),
        Declaration.from_dict(LSV2_ROW),
    ]
    for name in ("c.jsonl", "c.jsonl.gz"):
        path = write_jsonl(decls, tmp_path / name)
        assert read_jsonl(path) == decls
    a = (tmp_path / "x.jsonl.gz").name
    write_jsonl(decls, tmp_path / a)
    first = (tmp_path / a).read_bytes()
    write_jsonl(decls, tmp_path / a)
    assert (tmp_path / a).read_bytes() == first  # reproducible gzip
    lsv2 = write_jsonl(decls, tmp_path / "l.jsonl", style="lsv2")
    assert [d.name for d in read_jsonl(lsv2)] == ["A.b", "Finset.sum_image"]
    assert corpus_sha256(decls) != corpus_sha256(decls[:1])


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("{not json", None),
        ('{"kind": "theorem"}', "name"),
        ('{"name": "x"}', "kind"),
        ('{"name": "x", "kind": "def", "line": "3"}', "line"),
        ('{"name": "x", "kind": "def", "docstring": 5}', "docstring"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path: Path, line: str, field: str | None) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"name": "ok", "kind": "def"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_jsonl(path)
    assert info.value.line == 2 and info.value.field == field and str(path) in str(info.value)


def test_embedded_corpus_is_all_of_mathlib_and_holds_the_benchmark_targets() -> None:
    info = default_corpus_info()
    assert info["n_declarations"] == 256_190 and info["commit"].startswith("5352afcc")
    assert info["version"] == "v4.28.0-rc1" and info["licence"] == "Apache-2.0"
    assert info["sha256"] == file_sha256(default_corpus_path()) and default_corpus_path().stat().st_size < 11_000_000
    corpus = load_default_corpus()
    assert len(corpus) == info["n_declarations"] and len({d.module for d in corpus}) == info["n_modules"]
    names = {d.name for d in corpus}
    qr = load_mathlib_qr()
    assert sum(q.full_name in names for q in qr if q.fair) == 810  # every fair target is present
    assert len({q.full_name for q in qr} & names) == 191  # the 9 others are not in Mathlib at this commit
    premises = {doc for p in load_mathlib_mpr() for g in p.groups for doc in g.docs}
    assert len(premises & names) == 339
    assert default_corpus_path().with_name("NOTICE").is_file()
    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as handle:
        assert json.loads(handle.readline())["source"] == "mathlib4@5352afccd686"


def test_embedded_corpus_is_the_project_corpus(shared_data: Path) -> None:
    full = shared_data / "premise-search" / "corpus" / "mathlib-full.jsonl.gz"
    if not full.is_file():
        pytest.skip(f"{full} not found")
    assert file_sha256(full) == default_corpus_info()["sha256"]  # a verbatim copy


def test_test_subset_is_the_documented_subset(shared_data: Path) -> None:
    """tests/data/mathlib-subset.jsonl.gz: the 313 modules that hold a benchmark target (tests only)."""
    sample = shared_data / "premise-search" / "corpus" / "mathlib-sample.jsonl"
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    subset = read_jsonl(SUBSET)
    modules = {d.module for d in subset}
    expected = [d for d in read_jsonl(sample) if d.module in modules]
    assert subset == expected and len(modules) == 313 and len(subset) == 22_936


LEAN = """/-
Copyright notice. theorem not_a_decl : True
-/
import Mathlib.Order.Basic

/-! # Module doc mentioning `lemma fake : True`. -/

namespace Foo.Bar

/-- A lattice.
  Second line. -/
class Lattice (α : Type u) extends SemilatticeSup α,
    SemilatticeInf α

section Basic

/-- Sup commutes. -/
@[simp]
theorem sup_comm (a b : α) : a ⊔ b = b ⊔ a := by
  -- lemma in a comment
  simp

private lemma hidden : True := trivial

protected lemma _root_.top_thing {x : ℕ} (h : x = 1) :
    x + 0 = 1 := by simp [h]

instance : Inhabited (Foo α) := ⟨default⟩

noncomputable def myDef (n : ℕ) : ℕ :=
  n + 1

structure Point where
  x : ℕ

end Basic

end Foo.Bar

theorem outside : 1 = 1 := rfl
"""


def test_scanner_reads_scopes_docstrings_and_signatures() -> None:
    decls = scan_lean_source(LEAN, "Mathlib.Test", source="test")
    by_name = {d.name: d for d in decls}
    assert list(by_name) == [
        "Foo.Bar.Lattice",
        "Foo.Bar.sup_comm",
        "top_thing",
        "Foo.Bar.instInhabitedFoo",
        "Foo.Bar.myDef",
        "Foo.Bar.Point",
        "outside",
    ]
    lattice = by_name["Foo.Bar.Lattice"]
    assert lattice.kind == "class" and lattice.docstring == "A lattice.\nSecond line."
    assert lattice.signature == "class Lattice (α : Type u) extends SemilatticeSup α, SemilatticeInf α"
    comm = by_name["Foo.Bar.sup_comm"]
    assert comm.docstring == "Sup commutes." and comm.signature == "theorem sup_comm (a b : α) : a ⊔ b = b ⊔ a"
    assert comm.line == 19 and comm.module == "Mathlib.Test"
    assert by_name["top_thing"].signature.endswith(": x + 0 = 1") and by_name["top_thing"].docstring is None
    assert by_name["Foo.Bar.instInhabitedFoo"].name_guessed
    assert by_name["Foo.Bar.myDef"].signature == "def myDef (n : ℕ) : ℕ"
    assert by_name["Foo.Bar.Point"].signature == "structure Point"


def test_scan_file_module_name(tmp_path: Path) -> None:
    path = tmp_path / "Mathlib" / "Test.lean"
    path.parent.mkdir()
    path.write_text(LEAN, encoding="utf-8")
    assert {d.module for d in scan_lean_file(path, tmp_path)} == {"Mathlib.Test"}
