"""A Lean-aware tokenizer: Mathlib names split into their words, math notation turned into Mathlib's name words.

Mathlib names are built from words (`Finset.sum_image`, `orderOf_dvd_card`, `IsCompact.image`), and the naming
convention spells notation as words (`∣` is `dvd`, `≤` is `le`, `⁻¹` is `inv`, `∑` is `sum`). A query may use any
of the three registers: a Lean name or expression, LaTeX, or English. The tokenizer brings them to one vocabulary,
identically for documents and queries:

1. Lean/Unicode notation (`SYMBOL_WORDS`) and LaTeX commands (`LATEX_WORDS`; `\\mathbb{R}` -> `real`) become
   their Mathlib words; a few English phrases too ("less than or equal" -> `le`, "if and only if" -> `iff`).
2. Identifiers are split on `.`, `_`, camelCase and digits (`IsCompact.image_of_continuousOn` -> is, compact,
   image, of, continuous, on); each dotted component made of several words is also kept whole (`iscompact`),
   so exact names still match exactly.
3. Lowercase, a light plural stemmer (`groups` -> `group`, `divides` -> `divide`), and English words mapped to
   the Mathlib word they usually are in names (`divide` -> +`dvd`, `commutative` -> +`comm`). Mapped words are
   *added*, never substituted, so BM25 still sees the original word.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from repro_core.config import checked_fields
from repro_core.errors import ConfigError

__all__ = [
    "ENGLISH_WORDS",
    "LATEX_WORDS",
    "SYMBOL_WORDS",
    "LeanTokenizer",
    "TokenizerConfig",
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

#: English words (after lowercasing and stemming) -> the Mathlib name words they usually are; added, not replaced.
ENGLISH_WORDS: dict[str, str] = {
    "divide": "dvd",
    "divisible": "dvd",
    "divisor": "dvd",
    "divisibility": "dvd",
    "division": "div",
    "inverse": "inv",
    "invertible": "inv unit",
    "negation": "neg",
    "negative": "neg",
    "multiplication": "mul",
    "multiply": "mul",
    "multiplicative": "mul",
    "product": "prod mul",
    "addition": "add",
    "additive": "add",
    "subtraction": "sub",
    "difference": "sub sdiff",
    "power": "pow",
    "exponent": "pow",
    "square": "sq",
    "squared": "sq",
    "commutative": "comm",
    "commute": "comm",
    "commutativity": "comm",
    "associative": "assoc",
    "associativity": "assoc",
    "distributive": "distrib",
    "distributivity": "distrib",
    "cardinality": "card",
    "cardinal": "card",
    "derivative": "deriv",
    "differentiable": "deriv",
    "integrate": "integral",
    "limit": "tendsto",
    "converge": "tendsto",
    "convergence": "tendsto",
    "convergent": "tendsto",
    "tend": "tendsto",
    "neighborhood": "nhds",
    "neighbourhood": "nhds",
    "composition": "comp",
    "compose": "comp",
    "composite": "comp",
    "identity": "id",
    "injection": "injective",
    "surjection": "surjective",
    "bijection": "bijective",
    "increasing": "monotone mono",
    "monotonic": "monotone mono",
    "decreasing": "antitone",
    "maximum": "max",
    "minimum": "min",
    "supremum": "sup ssup isup",
    "infimum": "inf sinf iinf",
    "positive": "pos",
    "nonnegative": "nonneg",
    "intersection": "inter",
    "complement": "compl",
    "determinant": "det",
    "kernel": "ker",
    "dimension": "finrank",
    "absolute": "abs",
    "exponential": "exp",
    "logarithm": "log",
    "sine": "sin",
    "cosine": "cos",
    "equal": "eq",
    "equality": "eq",
    "modulo": "mod",
    "congruent": "modeq",
    "homomorphism": "hom",
    "morphism": "hom",
    "isomorphism": "iso equiv",
    "isomorphic": "iso equiv",
    "equivalent": "iff equiv",
    "equivalence": "equiv",
    "sequence": "seq",
    "function": "fun",
    "natural": "nat",
    "integer": "int",
    "rational": "rat",
    "successor": "succ",
    "predecessor": "pred",
    "extensionality": "ext",
    "reflexive": "refl",
    "reflexivity": "refl",
    "symmetric": "symm",
    "symmetry": "symm",
    "transitive": "trans",
    "transitivity": "trans",
    "antisymmetric": "antisymm",
    "irreflexive": "irrefl",
    "cancel": "cancel",
    "cancellation": "cancel",
    "idempotent": "idem",
    "element": "mem",
    "member": "mem",
    "belong": "mem",
    "contain": "mem subset",
    "nonzero": "ne zero",
    "empty": "empty",
    "finite": "finite fintype finset",
    "closure": "closure",
    "expectation": "integral",
    "probability": "prob measure",
    "dual": "dual",
    "quotient": "quotient",
    "polynomial": "polynomial",
    "matrice": "matrix",
    "eigenvalue": "eigenvalue",
    "orthogonal": "orthogonal",
    "uniqueness": "unique",
    "unique": "unique",
    "existence": "exists",
    "exist": "exists",
    "bounded": "bdd bounded",
    "upper": "upper",
    "lower": "lower",
    "preserve": "map",
    "preserves": "map",
    "coprime": "coprime",
    "irreducible": "irreducible",
    "factorization": "factorization factor",
    "continuity": "continuous",
    "compactness": "compact",
    "connectedness": "connected",
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


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """Harman's S-stemmer (plurals only), skipped for short words: `groups` -> `group`, `divides` -> `divide`."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class TokenizerConfig:
    """Options of `LeanTokenizer` (part of an index's identity: a change means a rebuild).

    Attributes:
        stem: apply the plural stemmer.
        compounds: also emit each multi-word dotted component whole (`iscompact`).
        english_words: add the Mathlib word of common English words (`ENGLISH_WORDS`).
        stop_words: drop `STOP_WORDS`. Single letters (bound variables: `x`, `α`) are always dropped.
    """

    stem: bool = True
    compounds: bool = True
    english_words: bool = True
    stop_words: bool = True

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not isinstance(value, bool):
                raise ConfigError(f"TokenizerConfig.{key}: expected a bool, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> TokenizerConfig:
        data = json.loads(text) if isinstance(text, str) else text
        return cls(**checked_fields(cls, data, "TokenizerConfig"))


class LeanTokenizer:
    """Text (Lean, LaTeX or English) -> tokens in Mathlib's name vocabulary; the same for documents and queries."""

    VERSION = 1

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config if config is not None else TokenizerConfig()
        self._word_cache: dict[str, tuple[str, ...]] = {}

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
        for component in word.split("."):
            parts = split_identifier(component)
            if not parts:
                continue
            for part in parts:
                token = _stem(part) if cfg.stem else part
                if (cfg.stop_words and token in STOP_WORDS) or (len(token) == 1 and not token.isdigit()):
                    continue
                out.append(token)
                if cfg.english_words:
                    extra = ENGLISH_WORDS.get(token)
                    if extra:
                        out.extend(extra.split())
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

    def name_tokens(self, name: str) -> list[str]:
        """Tokens of a declaration name alone (the name channel): its words plus its multi-word components."""
        return self.tokenize(name)

    def __call__(self, text: str) -> list[str]:
        return self.tokenize(text)
