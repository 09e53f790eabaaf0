"""Reasoning mode: sketch a plan of sub-queries, retrieve, filter, judge, reflect; rank premises by DCG votes.

LeanSearch v2's reasoning mode (`reasoning/run.py`, spec §2.5), with the same limits:

1. For attempt 0 .. `big_loop` (3, so at most 4 attempts):
   1. **Sketch:** the planner turns the problem (formal statement, informal statement, informal proof) into a
      `Plan` of definition queries, high-level queries and steps with queries; on later attempts it also sees
      the previous attempts (plans, kept premises, the judge's reasoning and suggestions) and reflects.
      All queries are de-duplicated and at most `max_queries` (20) are searched.
   2. **Retrieve:** each query goes to standard mode (`SearchEngine.search_batch`, hybrid + rerank) for
      `top_k_per_query` (30) results.
   3. **Filter:** the planner sees at most `filter_max_docs` (20) results of each query and returns the indices
      to keep; an unparseable answer keeps the top `fallback_keep` (5).
   4. **Judge:** the planner sees the plan and at most `judge_max_docs` (30) unique kept documents and says
      good or bad (with reasoning and suggestions); an unparseable answer is "bad".
   5. A "good" verdict ends the loop.
2. **Rank** the kept documents of the last attempt: `score(doc) = Σ_queries 1 / log2(i + 2)`, with `i` the
   0-based position of the doc in that query's kept list; ties by first appearance; the top `output_top_k` (100).

The planner is pluggable: `LLMPlanner(llm)` writes our own prompts for the three roles (JSON replies, parsed
leniently by `informalize.extract_json`), and `OfflinePlanner` (the default) is deterministic and needs no model:

- sketch: the informal statement; the whole formal statement; the main theorem's conclusion and its parts (split
  at top-level `↔`/`∧`); its hypotheses (binder types); a query of all the Lean identifiers of the statement that
  name corpus declarations; the clauses of the informal statement; and up to 4 of those identifiers alone as
  definition queries;
- filter: among the first `keep_top` (15) results, keep the top `always_keep` (5, upstream's fallback count) and
  those whose name words overlap the problem's words by at least `min_overlap` (0.5);
- judge: "good" iff every step kept a document whose name overlaps the problem by `min_overlap`;
- reflect: keep the queries that found something, replace the others by their keywords, and add the names of the
  dependencies (identifiers of the signatures) of the best kept documents.

`ReasoningEngine.run` returns the whole trace (`ReasoningTrace`: every attempt's plan, queries, retrieved and kept
names, filter and judge outputs, and the final ranking) as frozen dataclasses; `trace.to_dict()` is JSON-ready
and byte-identical across runs with a deterministic planner.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from premise_search.corpus import Declaration
from premise_search.informalize import extract_json
from premise_search.llm import LLMClient, LLMError, messages
from premise_search.retrieval import MODES, SearchEngine
from premise_search.tokenize import LeanTokenizer, split_identifier
from repro_core.errors import ConfigError, InputError

__all__ = [
    "Attempt",
    "FormalParts",
    "LLMPlanner",
    "OfflinePlanner",
    "Plan",
    "PlanStep",
    "Planner",
    "QueryTrace",
    "RankedPremise",
    "ReasoningConfig",
    "ReasoningEngine",
    "ReasoningProblem",
    "ReasoningTrace",
    "Verdict",
    "dcg_vote",
    "parse_formal_statement",
    "render_document",
]

logger = logging.getLogger(__name__)


# -- configuration and problem ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReasoningConfig:
    """Limits of the reasoning loop (defaults are upstream's `config.yaml`, spec §2.5).

    Attributes:
        big_loop: reflection rounds after the first attempt (at most `big_loop + 1` attempts).
        max_queries: most de-duplicated queries searched per plan.
        top_k_per_query: standard-mode results per query.
        mode, rerank: the standard-mode channel and reranker used for each query.
        filter_max_docs: results of one query shown to the filter.
        judge_max_docs: unique kept documents shown to the judge.
        fallback_keep: results kept when the filter's answer cannot be parsed.
        output_top_k: length of the final ranking (upstream 100; its evaluation uses 50).
    """

    big_loop: int = 3
    max_queries: int = 20
    top_k_per_query: int = 30
    mode: str = "hybrid"
    rerank: bool = True
    filter_max_docs: int = 20
    judge_max_docs: int = 30
    fallback_keep: int = 5
    output_top_k: int = 100

    def __post_init__(self) -> None:
        for key in ("big_loop", "max_queries", "top_k_per_query", "filter_max_docs", "judge_max_docs", "output_top_k"):
            value = getattr(self, key)
            low = 0 if key == "big_loop" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"ReasoningConfig.{key}: expected an integer >= {low}, got {value!r}")
        if isinstance(self.fallback_keep, bool) or not isinstance(self.fallback_keep, int) or self.fallback_keep < 0:
            raise ConfigError(f"ReasoningConfig.fallback_keep: expected an integer >= 0, got {self.fallback_keep!r}")
        if self.mode not in MODES:
            raise ConfigError(f"ReasoningConfig.mode: expected one of {MODES}, got {self.mode!r}")
        if not isinstance(self.rerank, bool):
            raise ConfigError("ReasoningConfig.rerank: expected true or false")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> ReasoningConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(**data)


@dataclass(frozen=True)
class ReasoningProblem:
    """What to find premises for: a Lean statement and/or its English version (MathlibMPR's fields)."""

    formal_statement: str = ""
    informal_statement: str = ""
    informal_proof: str = ""

    def __post_init__(self) -> None:
        for key in ("formal_statement", "informal_statement", "informal_proof"):
            if not isinstance(getattr(self, key), str):
                raise InputError(f"expected a string, got {type(getattr(self, key)).__name__}", field=key)
        if not (self.formal_statement.strip() or self.informal_statement.strip()):
            raise InputError("give a formal_statement or an informal_statement", field="formal_statement")


# -- trace records -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanStep:
    """One proof step of a plan and the queries that should find its premises."""

    description: str
    queries: tuple[str, ...]
    reasoning: str = ""


@dataclass(frozen=True)
class Plan:
    """A sketch: definition queries, high-level queries and steps (LSv2's DECOMPOSE output)."""

    definition_queries: tuple[str, ...] = ()
    highlevel_queries: tuple[str, ...] = ()
    steps: tuple[PlanStep, ...] = ()

    def queries(self, limit: int | None = None) -> list[str]:
        """All queries, de-duplicated (whitespace-normalised), in plan order; at most `limit`."""
        seen: dict[str, str] = {}
        for q in (*self.definition_queries, *self.highlevel_queries, *(q for s in self.steps for q in s.queries)):
            text = " ".join(q.split())
            if text and text.lower() not in seen:
                seen[text.lower()] = text
        out = list(seen.values())
        return out if limit is None else out[:limit]

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Plan:
        """A plan from an LLM's JSON (missing or wrongly typed parts are dropped, never an error)."""

        def strings(value: Any) -> tuple[str, ...]:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                return ()
            return tuple(v.strip() for v in value if isinstance(v, str) and v.strip())

        steps = []
        raw_steps = data.get("steps")
        for raw in raw_steps if isinstance(raw_steps, list) else []:
            if isinstance(raw, dict):
                queries = strings(raw.get("queries"))
                if queries:
                    steps.append(PlanStep(str(raw.get("description", "")), queries, str(raw.get("reasoning", ""))))
        return cls(strings(data.get("definition_queries")), strings(data.get("highlevel_queries")), tuple(steps))


@dataclass(frozen=True)
class QueryTrace:
    """One query of an attempt: what standard mode returned, what the filter kept and why."""

    query: str
    retrieved: tuple[str, ...]
    kept: tuple[str, ...]
    filter_reasoning: str = ""
    filter_parsed: bool = True


@dataclass(frozen=True)
class Verdict:
    """The judge's answer: `good` or `bad`, with reasoning and suggestions for the next plan."""

    judgment: Literal["good", "bad"]
    reasoning: str = ""
    suggestions: str = ""
    parsed: bool = True

    @property
    def good(self) -> bool:
        return self.judgment == "good"


@dataclass(frozen=True)
class Attempt:
    """One sketch-retrieve-filter-judge round."""

    index: int
    plan: Plan
    plan_source: str
    queries: tuple[QueryTrace, ...]
    judged: tuple[str, ...]
    verdict: Verdict


@dataclass(frozen=True)
class RankedPremise:
    """A premise of the final ranking with its DCG vote score and the number of queries that kept it."""

    name: str
    doc_id: str
    kind: str
    module: str
    score: float
    votes: int


@dataclass(frozen=True)
class ReasoningTrace:
    """The whole run: problem, planner, configuration, attempts and the final ranking."""

    problem: ReasoningProblem
    planner: str
    config: ReasoningConfig
    attempts: tuple[Attempt, ...]
    ranking: tuple[RankedPremise, ...]

    @property
    def names(self) -> list[str]:
        """The ranked premise names, best first (what the MathlibMPR metrics score)."""
        return [p.name for p in self.ranking]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (nested dicts, lists, strings, numbers, booleans)."""
        return json.loads(json.dumps(asdict(self)))


# -- planner protocol ---------------------------------------------------------------------------------------------
class Planner(Protocol):
    """The three LLM roles of the reasoning mode. A None answer means "could not parse" (fallbacks apply)."""

    @property
    def id(self) -> str: ...

    def decompose(self, problem: ReasoningProblem, history: Sequence[Attempt]) -> Plan | None: ...

    def filter(
        self, problem: ReasoningProblem, query: str, docs: Sequence[Declaration]
    ) -> tuple[list[int], str] | None: ...

    def judge(
        self, problem: ReasoningProblem, plan: Plan, docs: Sequence[Declaration], traces: Sequence[QueryTrace]
    ) -> Verdict | None: ...


def render_document(decl: Declaration, max_chars: int = 1200) -> str:
    """A document as the filter and judge see it: a `lean4` block `/-- informal -/ kind Name signature`."""
    informal = decl.informal_description or decl.docstring or ""
    head = f"/-- {' '.join(informal.split())[:max_chars]} -/\n" if informal else ""
    signature = decl.signature or decl.type or decl.name
    return f"```lean4\n{head}{signature[:max_chars]}\n```"


# -- Lean statement parsing (offline planner) --------------------------------------------------------------------
@dataclass(frozen=True)
class FormalParts:
    """The main theorem of a Lean snippet: name, binder types, conclusion, docstring, opened namespaces."""

    name: str
    binders: tuple[str, ...]
    conclusion: str
    docstring: str
    namespaces: tuple[str, ...]


_THEOREM_HEAD = re.compile(
    r"^[ \t]*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|nonrec)\s+)*(theorem|lemma|example)\b", re.MULTILINE
)
_OPEN = re.compile(r"^\s*(?:open|namespace)\s+([^\n]+)", re.MULTILINE)
_DOC = re.compile(r"/--(.*?)-/", re.DOTALL)
_CLOSE = {"(": ")", "[": "]", "{": "}", "⦃": "⦄", "⟨": "⟩"}


def _top_level_split(text: str, separators: Sequence[str]) -> list[str]:
    """Split at separators that are outside brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in _CLOSE:
            depth += 1
        elif ch in _CLOSE.values():
            depth = max(depth - 1, 0)
        elif depth == 0:
            for sep in separators:
                if text.startswith(sep, i):
                    parts.append(text[start:i])
                    start = i + len(sep)
                    i += len(sep) - 1
                    break
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_formal_statement(text: str) -> FormalParts | None:
    """The last `theorem`/`lemma`/`example` of a Lean snippet, split into binders and conclusion; None if absent."""
    heads = list(_THEOREM_HEAD.finditer(text))
    if not heads:
        return None
    head = heads[-1]
    before = text[: head.start()]
    docs = _DOC.findall(before)
    docstring = " ".join(docs[-1].split()) if docs and before.rstrip().endswith("-/") else ""
    namespaces = []
    for match in _OPEN.finditer(before):
        namespaces.extend(w for w in match.group(1).split() if w[:1].isupper() or "." in w)
    rest = text[head.end() :]
    name_match = re.match(r"\s+([^\s(\[{⦃:]+)", rest) if head.group(1) != "example" else None
    name = name_match.group(1) if name_match else ""
    i = name_match.end() if name_match else 0
    binders = []
    while True:
        while i < len(rest) and rest[i].isspace():
            i += 1
        if i >= len(rest) or rest[i] not in _CLOSE:
            break
        opener, depth, j = rest[i], 0, i
        while j < len(rest):
            if rest[j] in _CLOSE:
                depth += 1
            elif rest[j] in _CLOSE.values():
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner = rest[i + 1 : j]
        pieces = _top_level_split(inner, [":"])
        binder_type = pieces[-1] if (len(pieces) > 1 or opener == "[") else ""
        if binder_type and not re.fullmatch(r"(Type|Sort)\b.*", binder_type):
            binders.append(" ".join(binder_type.split()))
        i = j + 1
    conclusion = ""
    if rest[i : i + 1] == ":":
        body = rest[i + 1 :]
        end = _top_level_split(body, [":="])
        conclusion = " ".join(end[0].split()) if end else ""
    return FormalParts(name, tuple(binders), conclusion, docstring, tuple(namespaces))


# -- offline planner -----------------------------------------------------------------------------------------------
_STOP_IDENTIFIERS = frozenset(
    {"Type", "Prop", "Sort", "fun", "by", "sorry", "at", "with", "then", "else", "if", "let", "have", "show", "from"}
)
_STOPWORD_TEXT = (
    "a an the of to in on for and or is are be by with as that this then there exists every any all its it "
    "if let such where which when we some each given under into from at over"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_CLAUSE_SPLIT = re.compile(
    r"[,;]|\.\s|\b(?:and|then|if and only if|iff|such that|where|whose|which|so that|if)\b", re.IGNORECASE
)
_CODE_SPAN = re.compile(r"`[^`]*`|\$[^$]*\$")
_IDENTIFIER = re.compile(r"(?<![\w.])[^\W\d][\w.'!?₀-₉]*")


def _clauses(text: str) -> list[str]:
    """Clauses of an English statement, split at commas and clause words outside `code` and $math$ spans."""
    spans = _CODE_SPAN.findall(text)
    masked = _CODE_SPAN.sub("\x00", text)
    out = []
    for piece in _CLAUSE_SPLIT.split(masked):
        parts = (piece or "").split("\x00")
        rebuilt = parts[0]
        for part in parts[1:]:
            rebuilt += spans.pop(0) + part
        out.append(rebuilt.strip(" .:"))
    return [c for c in out if c]


class OfflinePlanner:
    """A deterministic planner that needs no model (module docstring). It reads the corpus through `engine`.

    Args:
        engine: the standard-mode engine (for name lookups and the tokenizer).
        keep_top: the filter looks at this many results of each query.
        min_overlap: a result is kept when this fraction of its name words occur in the problem.
        always_keep: the filter keeps this many top results regardless of overlap.
        formal_query: search the whole formal statement as one high-level query.
        clauses: add one step per clause of the informal statement.
        max_definitions: identifiers searched on their own as definition queries.
    """

    VERSION = 1

    def __init__(
        self,
        engine: SearchEngine,
        *,
        keep_top: int = 15,
        min_overlap: float = 0.5,
        always_keep: int = 5,
        max_definitions: int = 4,
        formal_query: bool = True,
        clauses: bool = True,
    ) -> None:
        if keep_top < 1 or not 0.0 <= min_overlap <= 1.0 or max_definitions < 0 or always_keep < 0:
            raise ConfigError(
                "OfflinePlanner: expected keep_top >= 1, 0 <= min_overlap <= 1, always_keep >= 0, max_definitions >= 0"
            )
        self.engine = engine
        self.tokenizer: LeanTokenizer = engine.tokenizer
        self.keep_top, self.min_overlap, self.max_definitions = keep_top, float(min_overlap), max_definitions
        self.always_keep = always_keep
        self.formal_query, self.clauses = bool(formal_query), bool(clauses)
        self._problem_words: dict[ReasoningProblem, frozenset[str]] = {}

    @property
    def id(self) -> str:
        return (
            f"offline-v{self.VERSION}(keep_top={self.keep_top},min_overlap={self.min_overlap},"
            f"always_keep={self.always_keep},max_definitions={self.max_definitions},"
            f"formal_query={self.formal_query},clauses={self.clauses})"
        )

    # helpers
    def _resolve(self, identifier: str, namespaces: Sequence[str]) -> str | None:
        identifier = identifier.strip(".")
        if not identifier or identifier in _STOP_IDENTIFIERS or len(identifier) < 2:
            return None
        for prefix in ("", *namespaces):
            name = f"{prefix}.{identifier}" if prefix else identifier
            if self.engine.lookup(name) is not None:
                return name
        return None

    def _identifiers(self, text: str, namespaces: Sequence[str]) -> list[str]:
        found: dict[str, None] = {}
        for match in _IDENTIFIER.finditer(text):
            name = self._resolve(match.group(0), namespaces)
            if name is not None:
                found.setdefault(name, None)
        return list(found)

    def _words(self, problem: ReasoningProblem) -> frozenset[str]:
        words = self._problem_words.get(problem)
        if words is None:
            text = f"{problem.informal_statement}\n{problem.formal_statement}\n{problem.informal_proof}"
            words = frozenset(self.tokenizer.tokenize(text))
            if len(self._problem_words) > 1024:
                self._problem_words.clear()
            self._problem_words[problem] = words
        return words

    @staticmethod
    def _keywords(text: str) -> str:
        words = [w for w in re.findall(r"[\w'∑∏∫≤≥≠∣⁻¹]+", text) if w.lower() not in _STOPWORDS]
        return " ".join(words)

    def _initial_plan(self, problem: ReasoningProblem) -> Plan:
        parts = parse_formal_statement(problem.formal_statement) if problem.formal_statement else None
        namespaces = parts.namespaces if parts else ()
        informal = " ".join(problem.informal_statement.split())
        highlevel: list[str] = []
        steps: list[PlanStep] = []
        if informal:
            highlevel.append(informal)
        if self.formal_query and problem.formal_statement.strip():
            highlevel.append(" ".join(problem.formal_statement.split())[:4000])
        if parts is not None:
            if parts.docstring and not informal:
                highlevel.append(parts.docstring)
            if parts.conclusion:
                highlevel.append(parts.conclusion)
                pieces = _top_level_split(parts.conclusion, ["↔", "∧"])
                if len(pieces) > 1:
                    steps += [PlanStep("part of the conclusion", (p,)) for p in pieces]
            for binder in parts.binders:
                if self._identifiers(binder, namespaces) and not re.fullmatch(r"[A-Z]\w*( \w+)?", binder):
                    steps.append(PlanStep("use the hypothesis", (binder,)))
        elif problem.formal_statement.strip():
            highlevel.append(" ".join(problem.formal_statement.split())[:2000])
        source = parts.conclusion + " " + " ".join(parts.binders) if parts else problem.formal_statement
        identifiers = self._identifiers(source, namespaces)
        if identifiers:
            steps.append(PlanStep("the notions of the statement", (" ".join(identifiers),)))
        for clause in _clauses(informal) if self.clauses else ():
            if len([w for w in re.findall(r"\w+", clause) if w.lower() not in _STOPWORDS]) >= 3:
                steps.append(PlanStep("a clause of the statement", (clause,)))
        definitions = tuple(identifiers[: self.max_definitions])
        return Plan(definitions, tuple(highlevel), tuple(steps))

    def _reflect(self, problem: ReasoningProblem, last: Attempt) -> Plan:
        found = {t.query for t in last.queries if t.kept}
        steps = []
        for step in last.plan.steps:
            kept = [q for q in step.queries if q in found]
            if kept:
                steps.append(PlanStep(step.description, tuple(kept), step.reasoning))
            else:
                keywords = tuple(k for k in (self._keywords(q) for q in step.queries) if k)
                if keywords:
                    steps.append(PlanStep(step.description, keywords, "keywords of a step that found nothing"))
        votes = dcg_vote([t.kept for t in last.queries])
        names: dict[str, None] = {}
        for name, _, _ in votes[:5]:
            decl = self.engine.lookup(name)
            if decl is None:
                continue
            namespaces = [".".join(decl.name.split(".")[:i]) for i in range(decl.name.count("."), 0, -1)]
            for dep in self._identifiers(decl.signature, namespaces):
                if dep != decl.name:
                    names.setdefault(dep, None)
        definitions = tuple(q for q in last.plan.definition_queries if q in found) + tuple(list(names)[:6])
        highlevel = tuple(q for q in last.plan.highlevel_queries if q in found) or last.plan.highlevel_queries[:1]
        return Plan(definitions, highlevel, tuple(steps))

    # the three roles
    def decompose(self, problem: ReasoningProblem, history: Sequence[Attempt]) -> Plan:
        return self._initial_plan(problem) if not history else self._reflect(problem, history[-1])

    def overlap(self, problem: ReasoningProblem, decl: Declaration) -> float:
        """Fraction of the words of `decl`'s last name component that occur in the problem."""
        name_words = set(split_identifier(decl.short_name))
        return len(name_words & self._words(problem)) / len(name_words) if name_words else 0.0

    def filter(self, problem: ReasoningProblem, query: str, docs: Sequence[Declaration]) -> tuple[list[int], str]:
        kept = [
            i
            for i, decl in enumerate(docs[: self.keep_top])
            if i < self.always_keep or self.overlap(problem, decl) >= self.min_overlap
        ]
        return (
            kept,
            f"kept {len(kept)} of the first {min(self.keep_top, len(docs))} (top {self.always_keep} + name overlap)",
        )

    def judge(
        self, problem: ReasoningProblem, plan: Plan, docs: Sequence[Declaration], traces: Sequence[QueryTrace]
    ) -> Verdict:
        """Good iff every step has a kept document whose name overlaps the problem by `min_overlap`."""
        supported = set()
        for trace in traces:
            for name in trace.kept:
                decl = self.engine.lookup(name)
                if decl is not None and self.overlap(problem, decl) >= self.min_overlap:
                    supported.add(" ".join(trace.query.split()).lower())
                    break
        missing = [s for s in plan.steps if not any(" ".join(q.split()).lower() in supported for q in s.queries)]
        if not docs:
            return Verdict("bad", "no query kept any document", "search for the notions of the statement")
        if missing:
            names = "; ".join(f"{s.description}: {s.queries[0]}" for s in missing[:5])
            return Verdict(
                "bad", f"{len(missing)} of {len(plan.steps)} steps lack a matching premise", f"rephrase {names}"
            )
        return Verdict("good", f"every step has a matching premise ({len(docs)} documents kept)")


# -- LLM planner -----------------------------------------------------------------------------------------------------
_SKETCH_SYSTEM = (
    "You plan premise searches for Lean 4 mathlib proofs. Reply with one JSON object only, no prose outside it."
)
_SKETCH = """Below is a theorem to be proved in Lean 4 with mathlib. Plan a proof and list the search queries
that would find the mathlib definitions and lemmas it needs. A query is a short natural-language description of
one mathlib item (e.g. "The definition of the order of an element of a group", or a lemma's full statement in
words); queries are sent to a semantic search engine over informal descriptions of mathlib.

Return JSON:
{{"definition_queries": [1 to 3 queries for the definitions the statement uses],
  "highlevel_queries": [2 to 4 queries for results that might prove the theorem almost directly],
  "steps": [3 to 7 objects {{"description": "...", "reasoning": "...", "queries": [1 to 3 queries]}}]}}
Use at most 20 queries in total.

## Formal statement
{formal}

## Informal statement
{informal}

## Informal proof
{proof}
{reflection}"""

_REFLECTION = """
## Previous attempt
The previous plan was judged insufficient. Its steps were:
{steps}
Judge's reasoning: {reasoning}
Judge's suggestions: {suggestions}
Write a COMPLETELY NEW plan that addresses these problems (different steps and different queries)."""

_FILTER = """A search for the query below returned these mathlib documents, numbered from 0.
Keep only the documents that are truly relevant to the query and could be used as a premise for the theorem
(matching meaning and type signature). An empty list is fine.

## Theorem
{statement}

## Query
{query}

## Documents
{documents}

Return JSON: {{"kept_results": [indices], "reasoning": "..."}}"""

_JUDGE = """Decide whether the proof plan below can be implemented in Lean 4 with mathlib using the retrieved
premises: every step must be supported by a retrieved result or be routine (simp, ring, linarith, definitional
unfolding). Judge "bad" if a key step has no supporting premise.

## Theorem
{statement}

## Plan
{steps}

## Retrieved premises
{documents}

## Filter notes
{notes}

Return JSON: {{"judgment": "good" or "bad", "reasoning": "...", "suggestions_if_bad": "..."}}"""


def _statement(problem: ReasoningProblem) -> str:
    parts = [problem.formal_statement.strip(), problem.informal_statement.strip()]
    return "\n\n".join(p for p in parts if p) or "(none)"


def _steps_text(plan: Plan) -> str:
    lines = [f"{i + 1}. {s.description} (queries: {'; '.join(s.queries)})" for i, s in enumerate(plan.steps)]
    return "\n".join(lines) or "(no steps; queries: " + "; ".join(plan.queries()) + ")"


class LLMPlanner:
    """The three roles through an `LLMClient` with our prompts; unparseable replies return None (fallbacks)."""

    def __init__(self, llm: LLMClient, *, filter_llm: LLMClient | None = None, judge_llm: LLMClient | None = None):
        self.sketch_llm = llm
        self.filter_llm = filter_llm if filter_llm is not None else llm
        self.judge_llm = judge_llm if judge_llm is not None else llm

    @property
    def id(self) -> str:
        return f"llm:{self.sketch_llm.id}"

    def _ask(self, llm: LLMClient, user: str) -> dict[str, Any] | None:
        try:
            return extract_json(llm.complete(messages(_SKETCH_SYSTEM, user), temperature=0.0))
        except LLMError as exc:
            logger.warning("reasoning LLM call failed: %s", exc)
            return None

    def decompose(self, problem: ReasoningProblem, history: Sequence[Attempt]) -> Plan | None:
        reflection = ""
        if history:
            last = history[-1]
            reflection = _REFLECTION.format(
                steps=_steps_text(last.plan),
                reasoning=last.verdict.reasoning or "(none)",
                suggestions=last.verdict.suggestions or "(none)",
            )
        user = _SKETCH.format(
            formal=problem.formal_statement.strip() or "(none)",
            informal=problem.informal_statement.strip() or "(none)",
            proof=problem.informal_proof.strip() or "(none)",
            reflection=reflection,
        )
        data = self._ask(self.sketch_llm, user)
        return None if data is None else Plan.from_json_dict(data)

    def filter(
        self, problem: ReasoningProblem, query: str, docs: Sequence[Declaration]
    ) -> tuple[list[int], str] | None:
        documents = "\n".join(f"[{i}] {render_document(d)}" for i, d in enumerate(docs))
        data = self._ask(
            self.filter_llm, _FILTER.format(statement=_statement(problem), query=query, documents=documents)
        )
        if data is None or not isinstance(data.get("kept_results"), list):
            return None
        kept = data["kept_results"]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in kept):
            return None
        return list(kept), str(data.get("reasoning", ""))

    def judge(
        self, problem: ReasoningProblem, plan: Plan, docs: Sequence[Declaration], traces: Sequence[QueryTrace]
    ) -> Verdict | None:
        reasoning = [t.filter_reasoning for t in traces]
        user = _JUDGE.format(
            statement=_statement(problem),
            steps=_steps_text(plan),
            documents="\n".join(render_document(d, 600) for d in docs) or "(none)",
            notes="\n".join(r for r in reasoning if r)[:4000] or "(none)",
        )
        data = self._ask(self.judge_llm, user)
        if data is None:
            return None
        judgment = str(data.get("judgment", "")).strip().lower()
        if judgment not in ("good", "bad"):
            return None
        return Verdict(
            "good" if judgment == "good" else "bad",
            str(data.get("reasoning", "")),
            str(data.get("suggestions_if_bad", data.get("suggestions", ""))),
        )


# -- ranking and the engine -------------------------------------------------------------------------------------------
def dcg_vote(kept_lists: Sequence[Sequence[str]]) -> list[tuple[str, float, int]]:
    """`(name, Σ_q 1/log2(i + 2), votes)` best first, `i` the 0-based position in each query's kept list.

    Ties go to the name seen first (query order, then position), so the ranking is deterministic.
    """
    score: dict[str, float] = {}
    votes: dict[str, int] = {}
    first: dict[str, int] = {}
    for kept in kept_lists:
        for i, name in enumerate(dict.fromkeys(kept)):
            score[name] = score.get(name, 0.0) + 1.0 / math.log2(i + 2)
            votes[name] = votes.get(name, 0) + 1
            first.setdefault(name, len(first))
    order = sorted(score, key=lambda n: (-score[n], first[n]))
    return [(n, score[n], votes[n]) for n in order]


def _fallback_plan(problem: ReasoningProblem) -> Plan:
    queries = [q for q in (problem.informal_statement.strip(), problem.formal_statement.strip()[:4000]) if q]
    return Plan(highlevel_queries=tuple(queries))


@dataclass
class ReasoningEngine:
    """The reasoning loop over a standard-mode `SearchEngine` (module docstring).

    Attributes:
        engine: the standard-mode engine every query goes to.
        planner: the sketch/filter/judge roles; None means `OfflinePlanner(engine)`.
        config: limits of the loop.
    """

    engine: SearchEngine
    planner: Planner | None = None
    config: ReasoningConfig = field(default_factory=ReasoningConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.config, ReasoningConfig):
            raise ConfigError("config: expected a ReasoningConfig")
        if self.planner is None:
            self.planner = OfflinePlanner(self.engine)

    def run(self, problem: ReasoningProblem, *, output_top_k: int | None = None) -> ReasoningTrace:
        """Sketch, retrieve, filter, judge and reflect for `problem`; the trace ends with the ranking."""
        planner = self.planner
        assert planner is not None  # set in __post_init__
        config = self.config
        top_k = config.output_top_k if output_top_k is None else output_top_k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"output_top_k: expected a positive integer, got {top_k!r}")
        attempts: list[Attempt] = []
        for index in range(config.big_loop + 1):
            plan = planner.decompose(problem, tuple(attempts))
            source = "planner"
            if plan is None or not plan.queries():
                plan, source = _fallback_plan(problem), "fallback: the plan was empty or unparseable"
            queries = plan.queries(config.max_queries)
            results = self.engine.search_batch(
                queries,
                config.top_k_per_query,
                mode=config.mode,  # type: ignore[arg-type]  # validated in ReasoningConfig
                rerank=config.rerank,
            )
            traces, notes = [], []
            kept_docs: dict[str, Declaration] = {}
            for query, hits in zip(queries, results, strict=True):
                shown = [h.declaration for h in hits[: config.filter_max_docs]]
                answer = planner.filter(problem, query, shown) if shown else ([], "no results")
                parsed = answer is not None
                if answer is None:
                    kept_idx, note = list(range(min(config.fallback_keep, len(shown)))), "unparseable: kept the top"
                else:
                    kept_idx = list(dict.fromkeys(i for i in answer[0] if 0 <= i < len(shown)))
                    note = answer[1]
                kept = tuple(shown[i].name for i in kept_idx)
                for i in kept_idx:
                    kept_docs.setdefault(shown[i].name, shown[i])
                notes.append(note)
                traces.append(QueryTrace(query, tuple(h.name for h in hits), kept, note, parsed))
            judged = list(kept_docs.values())[: config.judge_max_docs]
            verdict = planner.judge(problem, plan, judged, traces)
            if verdict is None:
                verdict = Verdict("bad", "the judge's answer could not be parsed", parsed=False)
            attempts.append(Attempt(index, plan, source, tuple(traces), tuple(d.name for d in judged), verdict))
            logger.debug("attempt %d: %d queries, verdict %s", index, len(queries), verdict.judgment)
            if verdict.good:
                break
        ranking = []
        for name, score, votes in dcg_vote([t.kept for t in attempts[-1].queries])[:top_k]:
            decl = self.engine.lookup(name)
            kind, module = (decl.kind, decl.module) if decl is not None else ("", "")
            ranking.append(RankedPremise(name, f"{module}::{name}", kind, module, score, votes))
        return ReasoningTrace(problem, planner.id, config, tuple(attempts), tuple(ranking))
