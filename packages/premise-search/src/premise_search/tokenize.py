"""A Lean-aware tokenizer: Mathlib names split into their words, math notation turned into Mathlib's name words.

Mathlib names are built from words (`Finset.sum_image`, `orderOf_dvd_card`, `IsCompact.image`), and the naming
convention spells notation as words (`∣` is `dvd`, `≤` is `le`, `⁻¹` is `inv`, `∑` is `sum`). A query may use any
of the three registers: a Lean name or expression, LaTeX, or English. The tokenizer brings them to one vocabulary,
identically for documents and queries:

1. Lean/Unicode notation (`SYMBOL_WORDS`) and LaTeX commands (`LATEX_WORDS`; `\\mathbb{R}` -> `real`) become
   their Mathlib words; a few English phrases too ("less than or equal" -> `le`, "if and only if" -> `iff`).
2. Accents are folded (`Bézout` -> `bezout`, so the plain spelling matches), then identifiers are split on `.`,
   `_`, camelCase and digits (`IsCompact.image_of_continuousOn` -> is, compact, image, of, continuous, on); each
   dotted component made of several words is also kept whole (`iscompact`), so exact names still match exactly.
3. Lowercase and a plural stemmer (`groups` -> `group`, `boxes` -> `box`, with the irregular plurals of
   mathematics: `vertices` -> `vertex`, `series` stays `series`).

Queries get one more step (`query_terms`): English words and phrases add the Mathlib name words they stand for
(`premise_search.naming`: "geometric" -> `geom`, "bounded above" -> `bdd`, "neighbourhood" -> `nhds`), with a
lower weight than the words typed. Documents are not expanded: their names already use the name words, and
the offline informaliser writes their English out.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from premise_search.naming import english_expansions
from repro_core.config import checked_fields
from repro_core.errors import ConfigError

__all__ = [
    "LATEX_WORDS",
    "QUERY_FUNCTION_WORDS",
    "SYMBOL_WORDS",
    "LeanTokenizer",
    "TokenizerConfig",
    "name_word_token",
    "split_identifier",
]

#: Lean / Unicode notation -> Mathlib name words (longest match first).
SYMBOL_WORDS: dict[str, str] = {
    "→+*": "ring hom",
    "→*": "monoid hom",
    "→+": "add monoid hom",
    "→ₗ": "linear map",
    "→L": "continuous linear map",
    "≃ₗ": "linear equiv",
    "≃+*": "ring equiv",
    "≃*": "mul equiv",
    "≃+": "add equiv",
    "≃ₜ": "homeomorph",
    "→ₐ": "alg hom",
    "≃ₐ": "alg equiv",
    "→o": "order hom",
    "≃o": "order iso",
    "↪": "embedding",
    "⁻¹'": "preimage",
    "''": "image",
    "⁻¹": "inv",
    "∃!": "exists unique",
    "∀ᶠ": "eventually",
    "∃ᶠ": "frequently",
    "=ᶠ": "eventually eq",
    "≤ᶠ": "eventually le",
    "ᵒᵈ": "order dual",
    "ᵐᵒᵖ": "mul opposite",
    "ᵃᵒᵖ": "add opposite",
    "ᵒᵖ": "op",
    "⬝ᵥ": "dot product",
    "∣": "dvd",
    "≤": "le",
    "≥": "le",
    "<": "lt",
    ">": "lt",
    "≠": "ne",
    "¬": "not",
    "∧": "and",
    "∨": "or",
    "↔": "iff",
    "∀": "forall",
    "∃": "exists",
    "∈": "mem",
    "∉": "not mem",
    "⊆": "subset",
    "⊂": "ssubset",
    "⊇": "subset",
    "⊃": "ssubset",
    "∪": "union",
    "∩": "inter",
    "ᶜ": "compl",
    "⊔": "sup",
    "⊓": "inf",
    "⊤": "top",
    "⊥": "bot",
    "∑": "sum",
    "∏": "prod",
    "∘": "comp",
    "×": "prod",
    "•": "smul",
    "∫": "integral",
    "∮": "circle integral",
    "√": "sqrt",
    "∞": "top infinity",
    "π": "pi",
    "‖": "norm",
    "⋃": "iUnion",
    "⋂": "iInter",
    "⨆": "iSup",
    "⨅": "iInf",
    "⊗": "tensor",
    "⊕": "sum",
    "≃": "equiv",
    "≅": "iso",
    "≌": "equivalence",
    "⥤": "functor",
    "⟶": "hom",
    "≫": "comp",
    "𝟙": "id",
    "∅": "empty",
    "ℕ": "nat",
    "ℤ": "int",
    "ℚ": "rat",
    "ℝ": "real",
    "ℂ": "complex",
    "𝓝": "nhds",
    "⌊": "floor",
    "⌈": "ceil",
    "≡": "modeq",
    "∂": "deriv",
    "∇": "grad",
    "ᵀ": "transpose",
    "†": "star",
    "⋆": "star",
    "∗": "star",
    "∠": "angle",
    "⁅": "bracket",
    "⟪": "inner",
    "𝔼": "expectation",
    "ℙ": "prob",
    "⧸": "quotient",
    "ℍ": "quaternion",
    "↑": "coe",
    "⇑": "coe fn",
    "↥": "coe sort",
    "+": "add",
    "*": "mul",
    "^": "pow",
    "/": "div",
    "%": "mod",
    "=": "eq",
    "!": "factorial",
    "∆": "symm diff",
}

#: LaTeX commands (without the backslash) -> Mathlib name words; unknown commands keep their own name.
LATEX_WORDS: dict[str, str] = {
    "le": "le",
    "leq": "le",
    "leqslant": "le",
    "ge": "le",
    "geq": "le",
    "geqslant": "le",
    "lt": "lt",
    "gt": "lt",
    "ne": "ne",
    "neq": "ne",
    "mid": "dvd",
    "nmid": "not dvd",
    "in": "mem",
    "notin": "not mem",
    "ni": "mem",
    "subseteq": "subset",
    "subset": "subset",
    "subsetneq": "ssubset",
    "supseteq": "subset",
    "cup": "union",
    "cap": "inter",
    "bigcup": "iUnion",
    "bigcap": "iInter",
    "setminus": "sdiff",
    "sqcup": "sup",
    "sqcap": "inf",
    "vee": "sup or",
    "wedge": "inf and",
    "lor": "or",
    "land": "and",
    "bigvee": "iSup",
    "bigwedge": "iInf",
    "top": "top",
    "bot": "bot",
    "sum": "sum",
    "prod": "prod",
    "int": "integral",
    "oint": "circle integral",
    "iint": "integral",
    "Rightarrow": "imp",
    "implies": "imp",
    "Longrightarrow": "imp",
    "iff": "iff",
    "Leftrightarrow": "iff",
    "Longleftrightarrow": "iff",
    "forall": "forall",
    "exists": "exists",
    "neg": "not",
    "lnot": "not",
    "circ": "comp",
    "cdot": "mul",
    "times": "prod",
    "otimes": "tensor",
    "oplus": "sum",
    "cong": "iso",
    "simeq": "equiv",
    "equiv": "modeq",
    "emptyset": "empty",
    "varnothing": "empty",
    "infty": "top infinity",
    "sqrt": "sqrt",
    "frac": "div",
    "partial": "deriv",
    "nabla": "grad",
    "lim": "tendsto limit",
    "to": "",
    "rightarrow": "",
    "mapsto": "",
    "longrightarrow": "",
    "deg": "degree",
    "det": "det",
    "ker": "ker",
    "dim": "finrank dim",
    "gcd": "gcd",
    "lcm": "lcm",
    "lfloor": "floor",
    "rfloor": "",
    "lceil": "ceil",
    "rceil": "",
    "binom": "choose",
    "choose": "choose",
    "langle": "inner",
    "rangle": "",
    "pi": "pi",
    "varepsilon": "epsilon",
    "epsilon": "epsilon",
    "mathbb": "",
    "mathrm": "",
    "operatorname": "",
    "mathcal": "",
    "mathfrak": "",
    "mathbf": "",
    "text": "",
    "textrm": "",
    "mathsf": "",
    "left": "",
    "right": "",
    "big": "",
    "Big": "",
    "quad": "",
    "qquad": "",
    "ldots": "",
    "dots": "",
    "cdots": "",
    "colon": "",
    "hat": "",
    "bar": "",
    "overline": "closure",
    "tilde": "",
    "widehat": "",
    "prime": "",
    "limits": "",
    "leftarrow": "",
    "hookrightarrow": "embedding",
    "twoheadrightarrow": "surjective",
    "star": "star",
    "ast": "star",
    "dagger": "star",
    "wp": "",
    "ell": "",
    "perp": "orthogonal",
    "parallel": "parallel",
    "angle": "angle",
    "triangle": "",
    "sim": "",
    "approx": "",
    "propto": "",
    "pm": "",
    "mp": "",
    "div": "div",
    "vert": "abs",
    "lvert": "abs",
    "rvert": "",
    "Vert": "norm",
    "lVert": "norm",
    "rVert": "",
    "|": "norm",
}

#: \mathbb letters -> Mathlib words.
_MATHBB = {
    "N": "nat",
    "Z": "int",
    "Q": "rat",
    "R": "real",
    "C": "complex",
    "H": "quaternion",
    "P": "prob",
    "E": "expectation",
    "F": "field",
}

#: English phrases rewritten before tokenizing (regex, replacement); matched as one alternation.
_PHRASE_LIST: tuple[tuple[str, str], ...] = (
    (r"less than or equal(?: to)?", "le"),
    (r"greater than or equal(?: to)?", "le"),
    (r"at most", "le"),
    (r"at least", "le"),
    (r"less than", "lt"),
    (r"greater than", "lt"),
    (r"not equal(?: to)?", "ne"),
    (r"if and only if", "iff"),
    (r"greatest common divisor", "gcd"),
    (r"least common multiple", "lcm"),
    (r"absolute value", "abs"),
    (r"inner product", "inner"),
    (r"square root", "sqrt"),
    (r"number of elements", "card"),
    (r"vector space", "module"),
    (r"one-to-one", "injective"),
    (r"well-founded", "wellfounded"),
)
_PHRASE_RE = re.compile("|".join(rf"\b({p})\b" for p, _ in _PHRASE_LIST), re.IGNORECASE)

#: English words that Mathlib names also use ("lt_of_le", "mul_le_of_le_one_left"), so documents keep them; a
#: query drops them when they stand alone as English between other words (`LeanTokenizer.query_terms`).
QUERY_FUNCTION_WORDS = frozenset(
    {"of", "for", "to", "in", "on", "at", "by", "with", "from", "as", "into", "onto", "over", "under"}
)

#: Function words dropped outright (pure English: none of them is a Mathlib name word).
STOP_WORDS = frozenset(
    {
        "the",
        "a",
        "an",
        "is",
        "are",
        "be",
        "been",
        "that",
        "this",
        "which",
        "its",
        "it",
        "we",
        "whose",
        "there",
        "has",
        "have",
        "every",
        "each",
        "given",
        "let",
    }
)

_ENGLISH_RE = re.compile(r"[a-z]+")
#: Longest English phrase `query_terms` looks for, in words.
_MAX_PHRASE = 4


def name_word_token(word: str, *, stem: bool = True) -> str:
    """The index token of a `NAME_WORDS` key: its stemmed single word (`nhds` -> `nhd`, as documents are
    tokenized), or the compound token of a multi-word key (`BddAbove` -> `bddabove`)."""
    parts = split_identifier(fold_accents(word))
    if len(parts) != 1:
        return "".join(parts)
    return _stem(parts[0]) if stem else parts[0]


@functools.cache
def _stemmed_expansions(stem: bool, stop_words: bool) -> dict[tuple[str, ...], tuple[str, ...]]:
    """`naming.english_expansions` with phrases stemmed (stop words dropped) as queries are, and each target
    turned into the token documents index it under (`name_word_token`)."""
    out: dict[tuple[str, ...], list[str]] = {}
    for phrase, targets in english_expansions().items():
        words = tuple(_stem(w) if stem else w for w in phrase if not (stop_words and w in STOP_WORDS) and w.isalpha())
        if words:
            merged = out.setdefault(words, [])
            for target in targets:
                token = name_word_token(target, stem=stem)
                if token not in merged:
                    merged.append(token)
    return {key: tuple(value) for key, value in out.items()}


_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in sorted(SYMBOL_WORDS, key=len, reverse=True)))
_MATHBB_RE = re.compile(r"\\mathbb\s*\{?\s*([A-Za-z])\s*\}?")
_LATEX_RE = re.compile(r"\\([A-Za-z]+|\|)")
_NOISE_RE = re.compile(r":=|=>|->|<\||\|>|<;>|::|\.\.")
_WORD_RE = re.compile(r"[^\W\d][\w'!?.]*[\w]|[^\W\d]|\d+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_a-zA-Z]+")


@functools.lru_cache(maxsize=200_000)
def split_identifier(name: str) -> tuple[str, ...]:
    """Words of a Lean identifier, lowercased: split on `.`, `_`, `'`, camelCase and digits.

    `split_identifier("IsCompact.image_of_continuousOn") == ("is", "compact", "image", "of", "continuous", "on")`;
    `"HTTPServer"` -> ("http", "server"); Greek and other letters stay attached to their run.
    """
    words: list[str] = []
    for part in re.split(r"[._'!?]+", name):
        for word in _CAMEL_RE.findall(part):
            words.append(word.lower())
    return tuple(words)


#: Plurals the suffix rules get wrong, and words ending in s that are not plurals.
_IRREGULAR_PLURALS = {
    "series": "series",
    "species": "species",
    "vertices": "vertex",
    "matrices": "matrix",
    "indices": "index",
    "simplices": "simplex",
    "apices": "apex",
    "hypotheses": "hypothesis",
    "bases": "basis",
    "analyses": "analysis",
    "axes": "axis",
    "radii": "radius",
    "loci": "locus",
    "foci": "focus",
    "lemmata": "lemma",
    "criteria": "criterion",
    "polyhedra": "polyhedron",
    "automata": "automaton",
    "atlas": "atlas",
    "gauss": "gauss",
    "lens": "lens",
    "bias": "bias",
    "thus": "thus",
    "whereas": "whereas",
}


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """A plural stemmer (after Harman's S-stemmer), skipped for short words.

    `groups` -> `group`, `divides` -> `divide`, `lattices` -> `lattice`, `boxes` -> `box`, `classes` -> `class`,
    `properties` -> `property`; irregular plurals and singulars ending in s come from `_IRREGULAR_PLURALS`.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    irregular = _IRREGULAR_PLURALS.get(word)
    if irregular is not None:
        return irregular
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(("xes", "ches", "shes", "sses", "zzes")):
        return word[:-2]
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss", "is")):
        return word[:-1]
    return word


def fold_accents(word: str) -> str:
    """`word` without accents (`Bézout` -> `Bezout`): canonical decomposition, then combining marks dropped.

    NFD, not NFKD: compatibility characters that carry meaning in Lean (`ℝ`, subscripts) are kept.
    """
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


@dataclass(frozen=True)
class TokenizerConfig:
    """Options of `LeanTokenizer` (part of an index's identity: a change means a rebuild).

    Attributes:
        stem: apply the plural stemmer.
        compounds: also emit each multi-word dotted component whole (`iscompact`).
        english_words: expand queries with the Mathlib name words of their English words and phrases
            (`premise_search.naming`); documents are never expanded.
        expansion_weight: weight of an added name word in a query, relative to 1 for a typed word.
        stop_words: drop `STOP_WORDS`. Single letters (bound variables: `x`, `α`) are always dropped.
    """

    stem: bool = True
    compounds: bool = True
    english_words: bool = True
    expansion_weight: float = 0.25
    stop_words: bool = True

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if key == "expansion_weight":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ConfigError(f"TokenizerConfig.expansion_weight: expected a number in [0, 1], got {value!r}")
            elif not isinstance(value, bool):
                raise ConfigError(f"TokenizerConfig.{key}: expected a bool, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> TokenizerConfig:
        data = json.loads(text) if isinstance(text, str) else text
        return cls(**checked_fields(cls, data, "TokenizerConfig"))


class LeanTokenizer:
    """Text (Lean, LaTeX or English) -> tokens in Mathlib's name vocabulary; the same for documents and queries."""

    VERSION = 2

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config if config is not None else TokenizerConfig()
        self._word_cache: dict[str, tuple[str, ...]] = {}
        self._expansions = _stemmed_expansions(self.config.stem, self.config.stop_words)

    @property
    def id(self) -> str:
        """Identity recorded in index manifests: `lean-v<VERSION>` + the config."""
        return f"lean-v{self.VERSION}:{self.config.to_json()}"

    def _normalise(self, text: str) -> str:
        if "\\" in text:
            text = _MATHBB_RE.sub(lambda m: f" {_MATHBB.get(m.group(1).upper(), m.group(1))} ", text)
            text = _LATEX_RE.sub(lambda m: f" {LATEX_WORDS.get(m.group(1), m.group(1))} ", text)
        text = _NOISE_RE.sub(" ", text)
        text = _SYMBOL_RE.sub(lambda m: f" {SYMBOL_WORDS[m.group(0)]} ", text)
        return _PHRASE_RE.sub(lambda m: f" {_PHRASE_LIST[m.lastindex - 1][1]} ", text)  # type: ignore[operator]

    def _word_tokens(self, word: str) -> tuple[str, ...]:
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        cfg = self.config
        out: list[str] = []
        for component in fold_accents(word).split("."):
            parts = split_identifier(component)
            if not parts:
                continue
            for part in parts:
                token = _stem(part) if cfg.stem else part
                if (cfg.stop_words and token in STOP_WORDS) or (len(token) == 1 and not token.isdigit()):
                    continue
                out.append(token)
            if cfg.compounds and len(parts) > 1:
                out.append("".join(parts))
        result = tuple(out)
        if len(self._word_cache) < 500_000:
            self._word_cache[word] = result
        return result

    def tokenize(self, text: str) -> list[str]:
        """Tokens of `text`, in order (a word may yield several tokens)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        tokens: list[str] = []
        for word in _WORD_RE.findall(self._normalise(text)):
            tokens.extend(self._word_tokens(word))
        return tokens

    def query_terms(self, text: str) -> dict[str, float]:
        """A query's weighted terms: its distinct tokens, plus the name words of its English (`naming`).

        Each distinct token weighs 1, however often it is typed: a short query repeats words for grammar
        ("the limit of a sum is the sum of the limits"), not for emphasis. Free-standing English function
        words (`QUERY_FUNCTION_WORDS`: "of", "for", "with", ...) are dropped; inside a Lean name they are name
        words and stay (`lt_of_le`). An English word or phrase (longest match first, up to 4 words) adds each
        of its Mathlib name words that the query does not already contain, with weight `expansion_weight`:
        "sum of a geometric series" adds `geom`; "bounded above" adds `bddabove`. Deterministic;
        insertion order is token order.
        """
        terms = dict.fromkeys(self.typed_terms(text), 1.0)
        if not self.config.english_words or self.config.expansion_weight == 0:
            return terms
        weight = float(self.config.expansion_weight)
        stop = STOP_WORDS if self.config.stop_words else frozenset()
        words = [self._english_word(w) for w in _ENGLISH_RE.findall(fold_accents(text).lower()) if w not in stop]
        i = 0
        while i < len(words):
            for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
                targets = self._expansions.get(tuple(words[i : i + n]))
                if targets is not None:
                    for target in targets:
                        terms.setdefault(target, weight)
                    i += n
                    break
            else:
                i += 1
        return terms

    def typed_terms(self, text: str) -> list[str]:
        """The distinct tokens of `text` without free-standing English function words, in order: the terms
        `query_terms` weighs 1, and what a query is compared with a result's name by (`Fermat's little theorem` ->
        `fermat`, `fermats`, `little`, `theorem`)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        terms: dict[str, None] = {}
        for word in _WORD_RE.findall(self._normalise(text)):
            if word.lower() not in QUERY_FUNCTION_WORDS:
                terms.update(dict.fromkeys(self._word_tokens(word)))
        return list(terms)

    def _english_word(self, word: str) -> str:
        return _stem(word) if self.config.stem else word

    def name_tokens(self, name: str) -> list[str]:
        """Tokens of a declaration name alone (the name channel): its words plus its multi-word components."""
        return self.tokenize(name)

    def __call__(self, text: str) -> list[str]:
        return self.tokenize(text)
