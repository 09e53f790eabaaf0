"""Mathlib's naming conventions as data: the words its declaration names use for mathematical concepts.

Mathlib names spell statements in a fixed vocabulary (the "Naming conventions" page of the Lean community
website): notation becomes words (`∣` is `dvd`, `≤` is `le`), and many concepts have a short name word
(`geom` for geometric, `bdd` for bounded, `nhds` for neighbourhoods, `deriv` for derivative, `card` for
cardinality). A mathematician searching in English writes the long words, so a lexical index of names misses
`geom_sum_eq` for "sum of a geometric series" and `BddAbove` for "bounded above".

`NAME_WORDS` maps each Mathlib name word to the English words and phrases it stands for (first = the one used
when spelling a name out). It is the one source for three uses:

- query expansion (`english_expansions`): an English word or phrase in a query adds its name words, with a
  lower weight than the words the user typed (`LeanTokenizer.query_terms`);
- the offline informaliser spells names out with `spell_name_word` (`geom_sum_eq` -> "geometric sum equals");
- the static embedding model is distilled from the English spelling of each name word, so that the teacher sees
  "neighbourhoods", not the letters `nhds`.

The table holds conventions, not facts about particular theorems: every key is a word that occurs in Mathlib
declaration names (checked against the full corpus by the tests), and every value is what that word means in
them.

Mathlib also names results the way mathematicians do, in its docstrings: the name a result is known by is set in
bold ("**Fermat's Little Theorem**: for all nonzero `a : ZMod p`, ..."; "The **binomial theorem**").
`result_titles` reads those names; a query that is one of them names the result, as a query that is its Lean name
does (`SearchEngine.named`), and the standard mode puts it first. Bold also marks the result a declaration is only
a version or a tool of ("A special case of the **binomial theorem**"); `own_titles` keeps the names a docstring
gives its own declaration.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "MENTION_WORDS",
    "NAME_WORDS",
    "RESULT_KINDS",
    "english_expansions",
    "is_result_name",
    "own_titles",
    "result_titles",
    "spell_name_word",
]

#: Mathlib name word -> English words/phrases it stands for. Keys are single name words, lowercase as
#: `split_identifier` yields them, or a few whole name components in their own spelling (`BddAbove`), which the
#: tokenizer indexes as one compound token (`bddabove`) beside their words.
NAME_WORDS: dict[str, tuple[str, ...]] = {
    # arithmetic and algebra
    "add": ("addition", "add", "plus", "sum"),
    "sub": ("subtraction", "subtract", "minus", "difference"),
    "mul": ("multiplication", "multiply", "product", "times"),
    "div": ("division", "divide", "quotient of numbers"),
    "neg": ("negation", "negative", "minus sign"),
    "inv": ("inverse", "reciprocal", "invert"),
    "pow": ("power", "exponent", "exponentiation", "raised to"),
    "zpow": ("integer power",),
    "npow": ("natural power",),
    "rpow": ("real power",),
    "cpow": ("complex power",),
    "sq": ("square", "squared"),
    "sqrt": ("square root",),
    "smul": ("scalar multiplication", "scalar multiple", "scalar action"),
    "nsmul": ("natural scalar multiple", "repeated addition"),
    "zsmul": ("integer scalar multiple",),
    "vadd": ("additive action", "translation"),
    "dvd": ("divides", "divisible", "divisibility", "divisor"),
    "mod": ("modulo", "remainder", "mod"),
    "emod": ("euclidean remainder",),
    "modeq": ("congruent", "congruence modulo"),
    "gcd": ("greatest common divisor",),
    "lcm": ("least common multiple",),
    "prod": ("product",),
    "sum": ("sum", "summation"),
    "tsum": ("infinite sum", "series", "sum of a series"),
    "tprod": ("infinite product",),
    "summable": ("summable", "convergent series", "absolutely convergent"),
    "geom": ("geometric",),
    "choose": ("binomial coefficient", "choose"),
    "factorial": ("factorial",),
    "totient": ("totient", "euler phi"),
    "abs": ("absolute value",),
    "norm": ("norm", "length of a vector"),
    "nnnorm": ("nonnegative norm",),
    "dist": ("distance",),
    "comm": ("commutativity", "commutative", "commute", "swap the order"),
    "assoc": ("associativity", "associative"),
    "distrib": ("distributivity", "distributive", "distribute"),
    "cancel": ("cancellation", "cancel"),
    "inj": ("injectivity", "injective", "one to one"),
    "surj": ("surjectivity", "surjective", "onto"),
    "bij": ("bijectivity", "bijective", "bijection"),
    "succ": ("successor",),
    "pred": ("predecessor",),
    "nat": ("natural number", "natural"),
    "int": ("integer",),
    "rat": ("rational number", "rational"),
    "real": ("real number", "real"),
    "complex": ("complex number", "complex"),
    "nnreal": ("nonnegative real",),
    "ennreal": ("extended nonnegative real",),
    "ereal": ("extended real",),
    "zmod": ("integers modulo",),
    "padic": ("p-adic",),
    "charp": ("characteristic",),
    "coeff": ("coefficient",),
    "eval": ("evaluation", "evaluate", "value at"),
    "aeval": ("algebra evaluation",),
    "deg": ("degree",),
    "roots": ("roots", "zeros"),
    "det": ("determinant",),
    "trace": ("trace",),
    "transpose": ("transpose",),
    "charpoly": ("characteristic polynomial",),
    "minpoly": ("minimal polynomial",),
    "ker": ("kernel", "null space"),
    "range": ("range", "image of a map"),
    "finrank": ("dimension", "finite rank"),
    "span": ("span", "spanned", "linear combinations"),
    "inner": ("inner product", "dot product"),
    "orthogonal": ("orthogonal", "perpendicular"),
    "iso": ("isomorphism", "isomorphic"),
    "hom": ("homomorphism", "morphism"),
    "equiv": ("equivalence", "equivalent", "bijection"),
    "aut": ("automorphism",),
    "endo": ("endomorphism",),
    "zero": ("zero", "nonzero"),
    "one": ("one",),
    # order and lattices
    "le": ("less than or equal", "at most"),
    "lt": ("less than", "smaller than"),
    "ge": ("greater than or equal", "at least"),
    "gt": ("greater than", "larger than"),
    "pos": ("positive",),
    "nonneg": ("nonnegative", "non-negative"),
    "nonpos": ("nonpositive",),
    "max": ("maximum",),
    "min": ("minimum",),
    "sup": ("supremum", "join", "least upper bound"),
    "inf": ("infimum", "meet", "greatest lower bound"),
    "ssup": ("supremum of a set",),
    "sinf": ("infimum of a set",),
    "isup": ("indexed supremum",),
    "iinf": ("indexed infimum",),
    "top": ("top", "greatest element", "maximal element"),
    "bot": ("bottom", "least element", "minimal element"),
    "bdd": ("bounded",),
    "BddAbove": ("bounded above", "bounded from above"),
    "BddBelow": ("bounded below", "bounded from below"),
    "upperBounds": ("upper bounds", "upper bound"),
    "lowerBounds": ("lower bounds", "lower bound"),
    "IsLUB": ("least upper bound", "supremum of a set"),
    "IsGLB": ("greatest lower bound", "infimum of a set"),
    "upper": ("upper",),
    "lower": ("lower",),
    "bounds": ("bounds",),
    "lub": ("least upper bound", "supremum"),
    "glb": ("greatest lower bound", "infimum"),
    "mono": ("monotone", "monotonic", "increasing", "nondecreasing"),
    "anti": ("antitone", "decreasing", "nonincreasing"),
    "monotone": ("monotone", "increasing", "nondecreasing"),
    "antitone": ("antitone", "decreasing", "nonincreasing"),
    "strict": ("strictly",),
    "wf": ("well founded", "well-founded"),
    "ord": ("order", "ordinal"),
    "icc": ("closed interval",),
    "ioo": ("open interval",),
    "ico": ("half open interval", "left closed right open interval"),
    "ioc": ("half open interval", "left open right closed interval"),
    "ici": ("closed ray", "interval from"),
    "iic": ("closed ray", "interval up to"),
    "ioi": ("open ray", "strictly greater"),
    "iio": ("open ray", "strictly less"),
    "compl": ("complement",),
    "sdiff": ("set difference", "difference of sets"),
    "symm": ("symmetry", "symmetric"),
    "refl": ("reflexivity", "reflexive"),
    "trans": ("transitivity", "transitive"),
    "antisymm": ("antisymmetry", "antisymmetric"),
    "irrefl": ("irreflexivity", "irreflexive"),
    # logic and sets
    "iff": ("if and only if", "equivalent", "characterization"),
    "eq": ("equals", "equal", "equality"),
    "ne": ("not equal", "distinct", "different", "nonzero"),
    "mem": ("membership", "member", "element", "belongs"),
    "subset": ("subset", "contained", "included"),
    "ssubset": ("proper subset", "strict subset"),
    "union": ("union",),
    "inter": ("intersection",),
    "iunion": ("indexed union", "union of a family"),
    "iinter": ("indexed intersection", "intersection of a family"),
    "image": ("image",),
    "preimage": ("preimage", "inverse image"),
    "univ": ("universal set", "whole space", "all elements"),
    "empty": ("empty",),
    "nonempty": ("nonempty", "non-empty", "inhabited"),
    "singleton": ("singleton",),
    "insert": ("insert",),
    "disjoint": ("disjoint",),
    "card": ("cardinality", "number of elements"),
    "finset": ("finite set",),
    "fintype": ("finite type",),
    "fin": ("finite", "first n natural numbers"),
    "ite": ("if then else", "conditional"),
    "exists": ("exists", "there is", "existence"),
    "forall": ("for all",),
    "id": ("identity",),
    "map": ("preserves", "respects", "image under"),
    "comp": ("composition", "composite", "compose"),
    "coe": ("coercion", "cast"),
    "cast": ("cast", "coercion"),
    "ext": ("extensionality",),
    "congr": ("congruence",),
    "mk": ("construction", "constructor"),
    "fst": ("first component",),
    "snd": ("second component",),
    "seq": ("sequence",),
    # analysis, topology, measure
    "nhds": ("neighbourhoods", "neighborhoods", "neighbourhood", "neighborhood"),
    "nhd": ("neighbourhood", "neighborhood"),
    "tendsto": ("tends to", "limit", "converges", "convergence"),
    "lim": ("limit",),
    "eventually": ("eventually", "for large enough"),
    "frequently": ("frequently", "infinitely often"),
    "cont": ("continuous", "continuously"),
    "diff": ("differentiable", "differentiability"),
    "deriv": ("derivative", "differentiate", "derivation"),
    "fderiv": ("derivative", "frechet derivative", "differential"),
    "integral": ("integral", "integrate", "integration", "expectation", "expected value"),
    "lintegral": ("lebesgue integral", "integral of a nonnegative function"),
    "ae": ("almost everywhere", "almost surely"),
    "meas": ("measure",),
    "exp": ("exponential", "exponential function"),
    "log": ("logarithm", "natural logarithm", "log"),
    "sin": ("sine",),
    "cos": ("cosine",),
    "tan": ("tangent",),
    "arctan": ("arctangent", "inverse tangent"),
    "arcsin": ("arcsine", "inverse sine"),
    "arccos": ("arccosine", "inverse cosine"),
    "sinh": ("hyperbolic sine",),
    "cosh": ("hyperbolic cosine",),
    "pi": ("pi",),
    "cauchy": ("cauchy",),
    "unif": ("uniform", "uniformly"),
    "lipschitz": ("lipschitz",),
    "prob": ("probability",),
    "cdf": ("cumulative distribution function",),
    "pdf": ("probability density function", "density"),
    "indep": ("independent", "independence"),
    "cond": ("conditional",),
    "ball": ("ball", "open ball"),
    "closure": ("closure",),
    "interior": ("interior",),
    "frontier": ("boundary", "frontier"),
    "clopen": ("clopen", "closed and open"),
    "homeomorph": ("homeomorphism",),
    "diffeomorph": ("diffeomorphism",),
    "isometry": ("isometry", "distance preserving"),
}

_SPLIT = re.compile(r"[\s\-]+")
#: Markdown bold on one line: `**` then a non-space, ..., a non-space then `**`; no code inside.
_BOLD = re.compile(r"\*\*(?=\S)([^*\n`]{2,80}?)(?<=\S)\*\*")
_WORD = re.compile(r"[^\W\d_][\w'’]*")
#: Words that say a phrase names a result ("binomial theorem", "law of cosines", "Cauchy criterion").
RESULT_KINDS = frozenset(
    {
        "theorem", "lemma", "inequality", "identity", "identities", "formula", "principle", "criterion", "rule",
        "equation", "conjecture", "hypothesis", "postulate", "law", "test", "trick", "method", "bound", "estimate",
        "argument", "problem", "paradox", "algorithm", "construction", "decomposition", "correspondence",
        "duality", "reciprocity", "transform", "transformation", "expansion", "embedding", "series",
    }
)  # fmt: skip


def spell_name_word(word: str) -> str:
    """The English for a Mathlib name word (`geom` -> "geometric"), or the word itself."""
    spelled = NAME_WORDS.get(word)
    return spelled[0] if spelled else word


@functools.cache
def english_expansions() -> dict[tuple[str, ...], tuple[str, ...]]:
    """English word sequences (lowercase, as written) -> the Mathlib name words they stand for.

    Built from `NAME_WORDS` by inverting it; a phrase that several name words share maps to all of them in table
    order. Phrases equal to their own name word (`sum` -> `sum`) are kept so that longer phrases still win.
    """
    out: dict[tuple[str, ...], list[str]] = {}
    for name_word, phrases in NAME_WORDS.items():
        for phrase in phrases:
            key = tuple(w for w in _SPLIT.split(phrase.lower()) if w)
            targets = out.setdefault(key, [])
            if name_word not in targets:
                targets.append(name_word)
    return {key: tuple(value) for key, value in out.items()}


def result_titles(docstring: str | None) -> tuple[str, ...]:
    """The names a docstring gives its result: its bold phrases, as written, in order, without repeats.

    `"**Fermat's Little Theorem**: for all nonzero ..."` -> `("Fermat's Little Theorem",)`. Mathlib sets the
    traditional name of a result in bold; 1,499 of its 69,734 docstrings do (commit 5352afcc). Bold follows
    Markdown (no space inside the stars) on one line, at most 80 characters and without code: `a ** b` is not a
    name.
    """
    if not docstring or "**" not in docstring:
        return ()
    return tuple(dict.fromkeys(_BOLD.findall(docstring)))


#: Words that, written before a bold name in its sentence, make it a result the declaration refers to rather than
#: its own name: "A version **of** the **Hahn-Banach theorem**", "An auxiliary equality useful **to** prove the
#: **Cauchy–Schwarz inequality**", "Upgrade ... **using** the **closed graph theorem**".
MENTION_WORDS = frozenset(
    {
        "of", "for", "to", "in", "on", "at", "by", "with", "from", "as", "into", "onto", "over", "under", "using",
        "via", "where", "when", "than",
    }
)  # fmt: skip
#: Where a sentence ends: after . ! ? : ; and at a blank line or a Markdown list item.
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n\s*\n|\n\s*(?:[-*+]|\d+[.)])\s+")


def own_titles(docstring: str | None) -> tuple[str, ...]:
    """The bold names a docstring gives its own declaration: those of `result_titles` that some sentence opens
    with, after words that qualify the name ("The **binomial theorem**", "Binary **rearrangement inequality**",
    "Lagrange's **four squares theorem**") but no word of `MENTION_WORDS`.

    Mathlib also sets in bold the result a declaration is a version, a special case, a part or a tool of: "A
    special case of the **binomial theorem**" (`sub_pow`), "An auxiliary equality useful to prove the
    **Cauchy–Schwarz inequality**". 87 declarations name a result that way whose own statement other declarations
    carry (commit 5352afcc); a query that names the result wants those.
    """
    if not docstring or "**" not in docstring:
        return ()
    out: dict[str, None] = {}
    for match in _BOLD.finditer(docstring):
        sentence = _SENTENCE_END.split(docstring[: match.start()])[-1]
        if not MENTION_WORDS.intersection(w.lower() for w in _WORD.findall(sentence)):
            out[match.group(1)] = None
    return tuple(out)


def is_result_name(title: str) -> bool:
    """Whether a bold phrase names a result, rather than stressing a word ("**not**", "**Do not use**") or
    setting a defined term ("**finitely generated**", "**nowhere dense**"): two words or more, and a word of
    `RESULT_KINDS` among them ("binomial theorem") or a capital after the first word (a proper name: "Fermat's
    Little Theorem", "Bolzano-Weierstrass"). 511 of the 627 distinct bold phrases of Mathlib's docstrings
    pass.
    """
    words = _WORD.findall(title)
    if len(words) < 2:
        return False
    return any(w.lower().rstrip("'’") in RESULT_KINDS for w in words) or any(w[0].isupper() for w in words[1:])
