"""A Lean 4 source scanner: declarations, their namespaces and docstrings from `.lean` text, without a Lean toolchain.

It does not elaborate anything. It reads the text the way Mathlib style writes it:

1. Comments are blanked out (`-- ...`, nested `/- ... -/`) keeping line numbers; doc comments `/-- ... -/` are
   kept aside with their position, module docs `/-! ... -/` are dropped; string literals are skipped.
2. Lines are read in order, tracking scopes: `namespace A.B` pushes `A`, `B`; `section [S]` pushes a section;
   `end X.Y` pops as many scopes as `X.Y` has components (`end` alone pops one).
3. A declaration starts at the beginning of a line, after optional attributes (`@[simp]`) and modifiers
   (`protected`, `noncomputable`, `private`, ...), with one of `theorem lemma def abbrev instance structure class
   inductive axiom opaque irreducible_def` (`class inductive`/`class abbrev` are classes). Its full name is the
   namespace prefix + the written name (`_root_.` drops the prefix; `«»` are removed). `private` declarations are
   skipped. An anonymous instance gets the name `inst` + the words of its type (an approximation of Lean's
   generated names, marked `name_guessed`).
4. The signature runs from the keyword to the first top-level `:=`, `where`, `|` line or `deriving`, with
   whitespace collapsed (at most 2,000 characters). The docstring is the doc comment right before the
   declaration (attributes may sit between them), dedented.

Not produced: structure fields and constructors, `to_additive`/`simps` generated lemmas, `alias`, notation.
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

from premise_search.corpus import Declaration, read_text

__all__ = ["DECLARATION_KEYWORDS", "module_name", "scan_lean_directory", "scan_lean_file", "scan_lean_source"]

logger = logging.getLogger(__name__)

#: Keyword -> kind.
DECLARATION_KEYWORDS = {
    "theorem": "theorem",
    "lemma": "theorem",
    "def": "def",
    "abbrev": "abbrev",
    "instance": "instance",
    "structure": "structure",
    "class": "class",
    "inductive": "inductive",
    "axiom": "axiom",
    "opaque": "opaque",
    "irreducible_def": "def",
}
_MODIFIERS = ("private", "protected", "noncomputable", "partial", "unsafe", "nonrec", "scoped", "local")
_DECL_RE = re.compile(
    r"^(?P<attrs>(?:@\[[^\n]*?\]\s*)*)(?P<mods>(?:(?:" + "|".join(_MODIFIERS) + r")\s+)*)"
    r"(?P<kw>class\s+inductive|class\s+abbrev|" + "|".join(DECLARATION_KEYWORDS) + r")\b"
)
_NAME_RE = re.compile(
    r"\s*(?:\(priority\s*:=[^)]*\)\s*)?(?P<name>(?:«[^»]*»|[^\s:\[\](){}⦃⦄.«]+)(?:\.(?:«[^»]*»|[^\s:\[\](){}⦃⦄.«]+))*)"
)
_SCOPE_RE = re.compile(r"^(namespace|section|end|noncomputable\s+section)\b[ \t]*([^\s-]*)")
_OPEN = "([{⟨⦃"
_CLOSE = ")]}⟩⦄"


def module_name(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """`root/Mathlib/Order/Lattice.lean` -> `Mathlib.Order.Lattice`."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return ".".join(rel.with_suffix("").parts)


def _strip_comments(text: str) -> tuple[str, list[tuple[int, str]]]:
    """(text with comments blanked but newlines kept, [(end offset, doc comment body)])."""
    out = list(text)
    docs: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
            continue
        if text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if text.startswith("/--", i) and not text.startswith("/---", i):
                docs.append((j, textwrap.dedent(" " * 3 + text[i + 3 : j - 2]).strip()))
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        i += 1
    return "".join(out), docs


def _signature(clean: str, start: int) -> str:
    """Header text from `start` up to the first top-level `:=`, `where`, `|` line, `deriving` or blank line."""
    depth, i, n = 0, start, len(clean)
    limit = min(n, start + 6000)
    while i < limit:
        c = clean[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0:
            if clean.startswith(":=", i):
                break
            if c == "\n":
                rest = clean[i + 1 :].lstrip(" \t")
                if rest.startswith(("|", "deriving", "\n")) or _DECL_RE.match(rest) or _SCOPE_RE.match(rest):
                    break
            if re.match(r"\b(where|deriving)\b", clean[i : i + 9]) and (i == 0 or not clean[i - 1].isalnum()):
                break
        i += 1
    return " ".join(clean[start:i].split())[:2000]


def scan_lean_source(text: str, module: str = "", *, source: str | None = None) -> list[Declaration]:
    """Declarations of one Lean 4 file's text, in order (see the module docstring for what is recognised)."""
    clean, docs = _strip_comments(text)
    scopes: list[tuple[str, bool]] = []  # (name, is_namespace)
    out: list[Declaration] = []
    seen: dict[str, int] = {}
    offset, doc_index = 0, 0
    lines = clean.split("\n")
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    for number, line in enumerate(lines, start=1):
        line_start = starts[number - 1]
        scope = _SCOPE_RE.match(line)
        if scope:
            keyword, name = scope.group(1), scope.group(2)
            if keyword == "namespace" and name:
                scopes.extend((part, True) for part in name.split("."))
            elif keyword.endswith("section"):
                scopes.append((name, False))
            elif keyword == "end":
                for _ in range(len(name.split(".")) if name else 1):
                    if scopes:
                        scopes.pop()
            continue
        match = _DECL_RE.match(line)
        if not match:
            continue
        keyword = " ".join(match.group("kw").split())
        kind = "class" if keyword.startswith("class") else DECLARATION_KEYWORDS[keyword]
        mods = match.group("mods").split()
        kw_start = line_start + match.start("kw")
        signature = _signature(clean, kw_start)
        docstring = None
        while doc_index < len(docs) and docs[doc_index][0] <= line_start + match.start("attrs") + len(
            match.group("attrs")
        ):
            end, body = docs[doc_index]
            between = clean[end:kw_start]
            if not re.sub(r"@\[[^\]]*\]|\b(" + "|".join(_MODIFIERS) + r")\b", "", between).strip():
                docstring = body
            doc_index += 1
        if "private" in mods:
            continue
        after = clean[line_start + match.end("kw") :]
        name_match = _NAME_RE.match(after)
        raw = name_match.group("name") if name_match else ""
        guessed = False
        if kind == "instance" and (not raw or raw.startswith(":") or raw in {"[", "("} or not name_match):
            raw = ""
        if not raw or raw.startswith((":", "[", "(", "{")):
            if kind != "instance":
                continue
            type_part = signature.rsplit(":", 1)[-1]
            words = re.findall(r"[A-Za-z][A-Za-z0-9_]*", type_part)
            raw = "inst" + "".join(w[:1].upper() + w[1:] for w in words[:4]) if words else "inst"
            guessed = True
        raw = raw.replace("«", "").replace("»", "")
        prefix = ".".join(name for name, is_ns in scopes if is_ns and name)
        # `_root_.x` escapes the enclosing namespaces.
        full = raw.removeprefix("_root_.") if raw.startswith("_root_.") or not prefix else f"{prefix}.{raw}"
        if guessed and full in seen:
            seen[full] += 1
            full = f"{full}_{seen[full]}"
        else:
            seen.setdefault(full, 0)
        out.append(
            Declaration(
                name=full,
                kind=kind,
                module=module,
                signature=signature,
                docstring=docstring,
                line=number,
                source=source,
                name_guessed=guessed,
            )
        )
    return out


def scan_lean_file(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, *, source: str | None = None
) -> list[Declaration]:
    """Declarations of one `.lean` file; the module name is its path relative to `root` (default: its folder)."""
    path = Path(path)
    module = module_name(path, root) if root is not None else path.stem
    return scan_lean_source(read_text(path), module, source=source)


def scan_lean_directory(root: str | os.PathLike[str], *, source: str | None = None) -> Iterator[Declaration]:
    """Declarations of every `*.lean` file under `root`, files in sorted path order."""
    root = Path(root)
    for path in sorted(root.rglob("*.lean")):
        yield from scan_lean_file(path, root, source=source)
