"""Hierarchical informalisation: turn Lean declarations into an informal name and description, bottom-up.

LeanSearch v2 (`corpus/informalize.py`, spec §2.2) informalises Mathlib with an LLM along the dependency DAG, so
each prompt can show the already-written descriptions of the declaration's dependencies. We follow the same
algorithm with our own prompts:

1. Rows: every kind in `InformalizeConfig.kinds`, minus internal names (`is_internal`: a numeric component, or
   a last component starting with `_` or equal to `eq_<n>`, `match_<n>`, `proof_<n>`); duplicate names, first
   wins. (Private declarations are already absent from our corpus.)
2. Edges: `Declaration.deps` when present (LSv2's `typeReferences`), else the identifiers of the signature (and of
   the value, for non-Prop kinds) that name corpus declarations, resolved through the declaration's enclosing
   namespaces (`infer_dependencies`). Self-references, internal names and names outside the corpus are dropped.
3. Levels by Kahn's algorithm: a node without dependencies is level 0, otherwise `1 + max(level(deps))`; nodes
   left over (on a cycle, or depending on one) all get `max_finite_level + 1` (`dependency_levels`).
4. Level by level, each prompt carries the informal text of at most `max_dependency_items` (96) dependencies,
   each cut to `dependency_tokens` (400) tokens; LLM calls of one level run `parallelism` at a time.
5. Token budget at 3.8 characters per token: signature ≤ 3,500, value ≤ 6,000, docstring ≤ 800 tokens; if the
   prompt still exceeds `max_prompt_tokens` (200,000), dependencies are dropped from the end, 1/8 at a time, then
   docstring, value and signature are halved, until it fits.
6. The reply's JSON object (`informal_name`, `informal_description`) is extracted leniently (`extract_json`:
   `<think>` blocks, code fences, surrounding prose, trailing commas, single quotes, Python literals). A reply
   without one fails that row: it is left without informal text (upstream skips it), or written by the offline
   informaliser with `fallback_offline=True`.

Without an LLM, `OfflineInformalizer` writes the text deterministically from the name (split into words, Mathlib
abbreviations spelt out), the kind, the namespace, the docstring and the signature. It adds English words that
lexical search can match, not understanding.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from premise_search.corpus import KINDS, Declaration
from premise_search.llm import LLMClient, LLMError, messages
from premise_search.naming import spell_name_word
from premise_search.tokenize import split_identifier
from repro_core.errors import ConfigError

__all__ = [
    "SYSTEM_PROMPT",
    "DependencyLevels",
    "InformalizeConfig",
    "InformalizeRecord",
    "InformalizeResult",
    "Informalizer",
    "OfflineInformalizer",
    "build_prompt",
    "dependency_levels",
    "extract_json",
    "infer_dependencies",
    "is_internal",
    "template_for",
    "truncate_tokens",
]

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a careful translator of Lean 4 mathlib declarations into mathematical English. "
    'Return ONLY a JSON object with the keys "informal_name" and "informal_description", and nothing else.'
)

_COMMON_RULES = """Rules for the informal description:
- Write standard mathematical English; use LaTeX between $...$ for formulas.
- Keep every hypothesis and every object of the formal statement; add nothing that is not there.
- Say what the objects are (a group $G$, a finite set $s$, a function $f : \\alpha \\to \\beta$) before using them.
- Do not mention Lean syntax, coercions, universe levels, instance arguments or implementation details.
- Use the informal descriptions of the dependencies below for the meaning of the names they define.
Rules for the informal name:
- A short noun phrase a mathematician would search for (at most 12 words), not the Lean name."""

_TEMPLATES: dict[str, str] = {
    "theorem": """Translate the following Lean 4 theorem into an informal mathematical statement.
State the hypotheses first ("Let ... If ..., then ..."), then the conclusion. For an `↔` say "if and only if";
for an equation, say which two quantities are equal. Name the theorem by its content ("Lagrange's theorem on the
order of an element", "commutativity of double sums").
""",
    "definition": """Explain the following Lean 4 definition informally.
Say what is being defined, for which inputs, and how it is computed or characterised (use the formal
definition when it is given). Mention the standard mathematical name of the notion when there is one.
""",
    "instance": """Explain the following Lean 4 typeclass instance informally.
Say which structure (the class) is given to which type or family of types, under which assumptions, and how
the structure is obtained (e.g. "the integers form a commutative ring under the usual operations").
""",
    "technical": """Explain the following Lean 4 declaration (a structure, class, inductive type, constructor,
recursor, field or other technical entry) informally.
Say what kind of object it introduces or accesses, what its components or cases are, and what it is used for.
""",
}

_TEMPLATE_OF_KIND = {
    "theorem": "theorem",
    "alias": "theorem",
    "def": "definition",
    "abbrev": "definition",
    "opaque": "definition",
    "axiom": "theorem",
    "instance": "instance",
}

#: Kinds whose value is not informalised (Props: the proof does not change the meaning), as upstream's
#: `isProp` fallback `kind == theorem`.
_PROP_KINDS = frozenset({"theorem", "alias"})

_INTERNAL_LAST = re.compile(r"^(_|eq_\d+$|match_\d+$|proof_\d+$)")


def is_internal(name: str) -> bool:
    """Compiler-generated names (`foo._proof_1`, `foo.match_2`, `foo.eq_1`, `_private.M.0.x`) are not informalised.

    Upstream's rule on jixia's list names: a non-string (numeric) component, or a last component starting with
    `_`, `eq_`, `match_` or `proof_` (we require the numbered forms `eq_1`, `match_2`, `proof_3`, because
    Mathlib has real lemmas such as `eq_comm`).
    """
    parts = name.split(".")
    if not name or any(not p or p.isdigit() for p in parts):  # `_private.Mod.0.x`: a numeric component
        return True
    return bool(_INTERNAL_LAST.match(parts[-1]))


def template_for(kind: str) -> str:
    """Template key of a kind: `theorem`, `definition`, `instance` or `technical` (spec §2.2 step 4)."""
    return _TEMPLATE_OF_KIND.get(kind, "technical")


@dataclass(frozen=True)
class InformalizeConfig:
    """Budgets and limits of the informaliser (defaults are upstream's, spec §2.2).

    Attributes:
        kinds: declaration kinds to informalise (others keep their row unchanged).
        max_dependency_items: most dependencies shown in one prompt.
        dependency_tokens: each dependency's informal text is cut to this many tokens.
        signature_tokens, value_tokens, docstring_tokens: per-field budgets.
        max_prompt_tokens: a prompt over this is shrunk (dependencies first, then fields halved).
        chars_per_token: the token estimate (characters / this).
        parallelism: concurrent LLM calls within one level.
        overwrite: re-informalise rows that already have informal text (else they are kept and used as context).
    """

    kinds: tuple[str, ...] = KINDS
    max_dependency_items: int = 96
    dependency_tokens: int = 400
    signature_tokens: int = 3500
    value_tokens: int = 6000
    docstring_tokens: int = 800
    max_prompt_tokens: int = 200_000
    chars_per_token: float = 3.8
    parallelism: int = 16
    overwrite: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str) or not all(isinstance(k, str) for k in self.kinds):
            raise ConfigError("InformalizeConfig.kinds: expected a list of kind names")
        object.__setattr__(self, "kinds", tuple(self.kinds))
        for key in (
            "max_dependency_items",
            "dependency_tokens",
            "signature_tokens",
            "value_tokens",
            "docstring_tokens",
            "max_prompt_tokens",
            "parallelism",
        ):
            value = getattr(self, key)
            low = 0 if key == "max_dependency_items" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"InformalizeConfig.{key}: expected an integer >= {low}, got {value!r}")
        if isinstance(self.chars_per_token, bool) or not (
            isinstance(self.chars_per_token, int | float) and self.chars_per_token > 0
        ):
            raise ConfigError(f"InformalizeConfig.chars_per_token: must be > 0, got {self.chars_per_token!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> InformalizeConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        if "kinds" in data:
            data["kinds"] = tuple(data["kinds"])
        return cls(**data)


# -- dependencies and levels -----------------------------------------------------------------------------------
_IDENT = re.compile(r"[^\W\d][\w.'!?]*")


def _candidates(token: str, namespace: Sequence[str]) -> Iterable[str]:
    token = token.rstrip(".")
    for i in range(len(namespace), -1, -1):
        yield ".".join([*namespace[:i], token])


def infer_dependencies(corpus: Sequence[Declaration], *, max_items: int | None = None) -> dict[str, tuple[str, ...]]:
    """`{name: dependency names}` for every declaration, in order of first mention.

    A row's `deps` are used when it has any; otherwise identifiers in the signature (and in the value, for
    non-Prop kinds) that name a declaration of `corpus`, resolved like Lean does for the enclosing namespaces
    (`sum_comm` inside `Finset.foo` finds `Finset.sum_comm`). Self-references and internal names are dropped.
    """
    names = {d.name for d in corpus}
    out: dict[str, tuple[str, ...]] = {}
    for decl in corpus:
        if decl.name in out:
            continue
        found: dict[str, None] = {}
        if decl.deps:
            for dep in decl.deps:
                if dep != decl.name and not is_internal(dep):
                    found.setdefault(dep, None)
        else:
            namespace = decl.name.split(".")[:-1]
            text = decl.signature
            if decl.value and decl.kind not in _PROP_KINDS:
                text = f"{text}\n{decl.value}"
            for match in _IDENT.finditer(text):
                for candidate in _candidates(match.group(0), namespace):
                    if candidate in names:
                        if candidate != decl.name and not is_internal(candidate):
                            found.setdefault(candidate, None)
                        break
        deps = tuple(found)
        out[decl.name] = deps if max_items is None else deps[:max_items]
    return out


@dataclass(frozen=True)
class DependencyLevels:
    """Levels of a dependency graph (Kahn's algorithm).

    Attributes:
        level: `{node: level}`; dependencies-free nodes are 0.
        cyclic: nodes Kahn's algorithm could not order (on a cycle or downstream of one), at `max_finite + 1`.
        max_finite: the largest level of an ordered node (-1 for an empty graph).
    """

    level: dict[str, int]
    cyclic: frozenset[str]
    max_finite: int

    def batches(self, order: Sequence[str] | None = None) -> list[list[str]]:
        """Nodes grouped by level, lowest first; within a level in `order` (default: insertion order)."""
        order = list(self.level) if order is None else [n for n in order if n in self.level]
        top = max(self.level.values(), default=-1)
        groups: list[list[str]] = [[] for _ in range(top + 1)]
        for node in order:
            groups[self.level[node]].append(node)
        return [g for g in groups if g]


def dependency_levels(nodes: Sequence[str], edges: Mapping[str, Iterable[str]]) -> DependencyLevels:
    """Kahn's algorithm on `node -> its dependencies`: `level(v) = 1 + max(level(deps))`, leaves 0.

    Edges to nodes outside `nodes` and self-loops are ignored. Nodes never released (a cycle and everything
    that depends on one) are placed together after the finite levels, as upstream does.
    """
    node_set = dict.fromkeys(nodes)
    deps: dict[str, list[str]] = {}
    dependents: dict[str, list[str]] = {n: [] for n in node_set}
    for n in node_set:
        unique = [d for d in dict.fromkeys(edges.get(n, ())) if d in node_set and d != n]
        deps[n] = unique
        for d in unique:
            dependents[d].append(n)
    remaining = {n: len(deps[n]) for n in node_set}
    level: dict[str, int] = {}
    frontier = [n for n in node_set if remaining[n] == 0]
    for n in frontier:
        level[n] = 0
    while frontier:
        released = []
        for n in frontier:
            for m in dependents[n]:
                remaining[m] -= 1
                if remaining[m] == 0:
                    level[m] = 1 + max(level[d] for d in deps[m])
                    released.append(m)
        frontier = released
    max_finite = max(level.values(), default=-1)
    cyclic = frozenset(n for n in node_set if n not in level)
    for n in node_set:
        if n in cyclic:
            level[n] = max_finite + 1
    return DependencyLevels({n: level[n] for n in node_set}, cyclic, max_finite)


# -- prompts ---------------------------------------------------------------------------------------------------
def truncate_tokens(text: str, tokens: int, chars_per_token: float = 3.8) -> str:
    """`text` cut to about `tokens` tokens (`tokens * chars_per_token` characters), marked with `…` when cut."""
    limit = int(tokens * chars_per_token)
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


@dataclass(frozen=True)
class _PromptParts:
    docstring: str
    signature: str
    value: str
    dependencies: tuple[str, ...]


def _render_user(decl: Declaration, level: int, parts: _PromptParts) -> str:
    sections = [
        _TEMPLATES[template_for(decl.kind)].strip(),
        _COMMON_RULES,
        "## Head statements",
        f"Module: {decl.module or '(unknown)'}\nEntry level: {level}\nKind: {decl.kind}",
        "## Docstring",
        parts.docstring or "(none)",
        "## Dependent statements",
        "\n".join(parts.dependencies) if parts.dependencies else "(none)",
        "## Neighbor statements",
        "(none)",
        "## Formal name",
        decl.name,
        "## Formal statement",
        parts.signature or "(none)",
    ]
    if parts.value:
        sections += ["## Formal definition", parts.value]
    sections.append('Answer with JSON only: {"informal_name": "...", "informal_description": "..."}')
    return "\n\n".join(sections)


def _dependency_line(dep: Declaration, config: InformalizeConfig) -> str:
    text = f"{dep.informal_name or dep.name}: {dep.informal_description or dep.docstring or dep.signature}"
    return f"- `{dep.name}` ({dep.kind}): " + truncate_tokens(
        " ".join(text.split()), config.dependency_tokens, config.chars_per_token
    )


def build_prompt(
    decl: Declaration,
    level: int,
    dependencies: Sequence[Declaration],
    config: InformalizeConfig | None = None,
) -> list[dict[str, str]]:
    """The chat messages informalising `decl`, with the informal text of (at most 96 of) its `dependencies`.

    Fields are cut to their token budgets; a prompt over `max_prompt_tokens` sheds dependencies from the end
    (1/8 at a time), then halves docstring, value and signature until it fits (or nothing is left to cut).
    """
    config = config if config is not None else InformalizeConfig()
    cpt = config.chars_per_token
    value = decl.value if (decl.value and decl.kind not in _PROP_KINDS) else ""
    parts = _PromptParts(
        truncate_tokens(decl.docstring or "", config.docstring_tokens, cpt),
        truncate_tokens(decl.signature or decl.type or "", config.signature_tokens, cpt),
        truncate_tokens(value, config.value_tokens, cpt),
        tuple(_dependency_line(d, config) for d in dependencies[: config.max_dependency_items]),
    )
    budget_chars = config.max_prompt_tokens * cpt
    user = _render_user(decl, level, parts)
    while len(SYSTEM_PROMPT) + len(user) > budget_chars:
        if parts.dependencies:
            drop = max(1, math.ceil(len(parts.dependencies) / 8))
            parts = replace(parts, dependencies=parts.dependencies[:-drop])
        else:
            longest = max(len(parts.docstring), len(parts.value), len(parts.signature))
            if longest <= 16:
                break  # the fixed instructions alone exceed the budget: send what is left
            parts = _PromptParts(
                _halve(parts.docstring), _halve(parts.signature), _halve(parts.value), parts.dependencies
            )
        user = _render_user(decl, level, parts)
    return messages(SYSTEM_PROMPT, user)


def _halve(text: str) -> str:
    return text if len(text) <= 16 else text[: len(text) // 2] + "…"


# -- lenient JSON ----------------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _balanced_objects(text: str) -> Iterable[str]:
    """Substrings from each `{` to its matching `}` (quotes, both kinds, and escapes respected)."""
    start = text.find("{")
    while start != -1:
        depth, quote, escaped = 0, "", False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield text[start : i + 1]
                    break
        start = text.find("{", start + 1)


def _loads(candidate: str) -> dict[str, Any] | None:
    candidate = candidate.strip()
    if not candidate:
        return None
    attempts = [candidate, _TRAILING_COMMA.sub(r"\1", candidate)]
    for text in attempts:
        try:
            value = json.loads(text, strict=False)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    # Python-style literals: single quotes, True/False/None (and JSON's true/false/null outside strings)
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", attempts[1])))
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in an LLM reply, or None.

    Tries, in order: the whole reply; each fenced code block; each balanced `{...}` in the reply. Each candidate
    is parsed as JSON, then with trailing commas removed, then as a Python literal (single quotes). `<think>`
    blocks of reasoning models are dropped first.
    """
    if not isinstance(text, str):
        return None
    text = _THINK.sub("", text)
    candidates = [text, *(m.group(1) for m in _FENCE.finditer(text))]
    for candidate in candidates:
        value = _loads(candidate)
        if value is not None:
            return value
    for candidate in _balanced_objects(text):
        value = _loads(candidate)
        if value is not None:
            return value
    return None


# -- offline informaliser ----------------------------------------------------------------------------------------
_KIND_PHRASE = {
    "theorem": "Theorem",
    "alias": "Theorem (alias)",
    "def": "Definition",
    "abbrev": "Definition (abbreviation)",
    "instance": "Instance",
    "structure": "Structure",
    "class": "Typeclass",
    "inductive": "Inductive type",
    "axiom": "Axiom",
    "opaque": "Opaque definition",
    "field": "Structure field",
    "constructor": "Constructor",
    "recursor": "Recursor",
}


def _sentences(text: str, n: int) -> str:
    flat = " ".join(text.split())
    parts = re.split(r"(?<=[.!?])\s+", flat)
    return " ".join(parts[:n])


class OfflineInformalizer:
    """A deterministic informaliser that needs no model (the default).

    `informal_name`: the words of the last name component with Mathlib's name words spelt out
    (`premise_search.naming`: `dvd` → `divides`, `geom` → `geometric`), then the namespace (`sum comm` of
    `Finset.sum_comm` → "Sum commutativity (Finset)").
    `informal_description`: kind phrase, name and module, the docstring's first two sentences, the signature
    without its keyword and name, and the informal names of up to 8 dependencies.
    """

    VERSION = 2

    @property
    def id(self) -> str:
        return f"offline-v{self.VERSION}"

    @staticmethod
    def informal_name(decl: Declaration) -> str:
        words = [spell_name_word(w) for w in split_identifier(decl.short_name)] or [decl.short_name]
        text = " ".join(words)
        text = text[:1].upper() + text[1:]
        namespace = decl.name.rsplit(".", 1)[0] if "." in decl.name else ""
        return f"{text} ({namespace})" if namespace else text

    def informalize(self, decl: Declaration, dependencies: Sequence[Declaration] = ()) -> tuple[str, str]:
        """(informal name, informal description) of `decl`; the dependencies add their informal names."""
        name = self.informal_name(decl)
        parts = [f"{_KIND_PHRASE.get(decl.kind, decl.kind.capitalize())} `{decl.name}`"]
        if decl.module:
            parts[0] += f" in `{decl.module}`"
        parts[0] += f": {name[:1].lower() + name[1:]}."
        if decl.docstring:
            parts.append(_sentences(decl.docstring, 2))
        signature = " ".join((decl.signature or decl.type or "").split())
        head = re.match(
            r"^(?:[\w@\[\]()]+\s+)*?(theorem|lemma|def|abbrev|instance|structure|class|inductive|"
            r"axiom|opaque|alias)\s+\S+\s*",
            signature,
        )
        statement = (signature[head.end() :] if head else signature).lstrip(": ")
        if statement:
            parts.append(f"Formally: {truncate_tokens(statement, 200)}")
        if dependencies:
            uses = "; ".join((d.informal_name or self.informal_name(d)) for d in dependencies[:8])
            parts.append(f"It uses: {uses}.")
        return name, " ".join(parts)


# -- the driver --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InformalizeRecord:
    """What happened to one row: `status` is `llm`, `offline`, `kept` (had text), `failed`, `skipped`."""

    name: str
    level: int | None
    status: str
    n_dependencies: int = 0
    error: str | None = None


@dataclass(frozen=True)
class InformalizeResult:
    """The corpus with informal text filled in (input order), per-row records and the level structure."""

    declarations: list[Declaration]
    records: list[InformalizeRecord]
    levels: DependencyLevels
    informalizer: str

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.status] = out.get(r.status, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        return {
            "n_declarations": len(self.declarations),
            "n_levels": (max(self.levels.level.values()) + 1) if self.levels.level else 0,
            "n_cyclic": len(self.levels.cyclic),
            "informalizer": self.informalizer,
            "status": self.counts(),
        }


class Informalizer:
    """Informalise a corpus bottom-up along its dependency levels (module docstring).

    Args:
        llm: the model; None uses `OfflineInformalizer` for every row.
        config: budgets and limits.
        fallback_offline: when the LLM fails on a row (error or no JSON), write the offline text instead of
            leaving the row without informal text.
    """

    def __init__(
        self,
        llm: LLMClient | None = None,
        config: InformalizeConfig | None = None,
        *,
        fallback_offline: bool = False,
    ) -> None:
        self.llm = llm
        self.config = config if config is not None else InformalizeConfig()
        self.fallback_offline = fallback_offline
        self.offline = OfflineInformalizer()

    @property
    def id(self) -> str:
        return self.offline.id if self.llm is None else f"llm:{self.llm.id}"

    def _llm_row(
        self, decl: Declaration, level: int, deps: Sequence[Declaration]
    ) -> tuple[Declaration, InformalizeRecord]:
        assert self.llm is not None
        prompt = build_prompt(decl, level, deps, self.config)
        error: str | None
        try:
            reply = self.llm.complete(prompt, temperature=0.0)
            data = extract_json(reply)
            if data is None:
                error = "no JSON object in the reply"
            else:
                name, description = data.get("informal_name"), data.get("informal_description")
                if isinstance(name, str) and isinstance(description, str) and name.strip() and description.strip():
                    row = replace(decl, informal_name=name.strip(), informal_description=description.strip())
                    return row, InformalizeRecord(decl.name, level, "llm", len(deps))
                error = "the JSON lacks informal_name or informal_description strings"
        except LLMError as exc:
            error = str(exc)
        logger.warning("informalising %s failed: %s", decl.name, error)
        if self.fallback_offline:
            name, description = self.offline.informalize(decl, deps)
            row = replace(decl, informal_name=name, informal_description=description)
            return row, InformalizeRecord(decl.name, level, "offline", len(deps), error)
        return decl, InformalizeRecord(decl.name, level, "failed", len(deps), error)

    def _offline_row(
        self, decl: Declaration, level: int, deps: Sequence[Declaration]
    ) -> tuple[Declaration, InformalizeRecord]:
        name, description = self.offline.informalize(decl, deps)
        row = replace(decl, informal_name=name, informal_description=description)
        return row, InformalizeRecord(decl.name, level, "offline", len(deps))

    def run(
        self,
        corpus: Sequence[Declaration],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> InformalizeResult:
        """Informalise `corpus`; `on_progress(n)` is called after every finished batch of `n` rows."""
        config = self.config
        kinds = set(config.kinds)
        first: dict[str, int] = {}
        for i, decl in enumerate(corpus):
            first.setdefault(decl.name, i)
        selected = [
            d.name for i, d in enumerate(corpus) if first[d.name] == i and d.kind in kinds and not is_internal(d.name)
        ]
        selected_set = set(selected)
        edges = infer_dependencies(corpus)
        levels = dependency_levels(selected, edges)
        current: dict[str, Declaration] = {corpus[i].name: corpus[i] for i in first.values()}
        records: dict[str, InformalizeRecord] = {}
        workers = config.parallelism if self.llm is not None else 1
        pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        try:
            for batch in levels.batches(selected):
                jobs = []
                for name in batch:
                    decl = current[name]
                    level = levels.level[name]
                    deps = [current[d] for d in edges.get(name, ()) if d in current][: config.max_dependency_items]
                    if decl.informal_description and not config.overwrite:
                        records[name] = InformalizeRecord(name, level, "kept", len(deps))
                        continue
                    jobs.append((decl, level, deps))
                run_one = self._llm_row if self.llm is not None else self._offline_row
                if pool is not None and len(jobs) > 1:
                    done = list(pool.map(run_one, *zip(*jobs, strict=True)))
                else:
                    done = [run_one(*job) for job in jobs]
                for row, record in done:
                    current[row.name] = row
                    records[row.name] = record
                if on_progress is not None:
                    on_progress(len(batch))
        finally:
            if pool is not None:
                pool.shutdown()
        out_rows, out_records = [], []
        for i, decl in enumerate(corpus):
            if first[decl.name] == i and decl.name in selected_set:
                out_rows.append(current[decl.name])
                out_records.append(records[decl.name])
            else:
                out_rows.append(decl)
                reason = "duplicate name" if first[decl.name] != i else "internal name or kind not selected"
                out_records.append(InformalizeRecord(decl.name, None, "skipped", 0, reason))
        return InformalizeResult(out_rows, out_records, levels, self.id)
