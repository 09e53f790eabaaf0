"""The Lean-aware tokenizer: identifier splitting, notation and LaTeX to Mathlib words, query expansion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from premise_search.naming import (
    NAME_WORDS,
    english_expansions,
    is_result_name,
    own_titles,
    result_titles,
    spell_name_word,
)
from premise_search.tokenize import LeanTokenizer, TokenizerConfig, fold_accents, name_word_token, split_identifier


def test_split_identifier() -> None:
    assert split_identifier("IsCompact.image_of_continuousOn") == ("is", "compact", "image", "of", "continuous", "on")
    assert split_identifier("HTTPServer") == ("http", "server")
    assert split_identifier("orderOf_dvd_card") == ("order", "of", "dvd", "card")
    assert split_identifier("T2Space") == ("t", "2", "space")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a ∣ b", {"dvd"}),
        ("x ≤ y", {"le"}),
        ("x⁻¹", {"inv"}),
        ("∑ i ∈ s, f i", {"sum", "mem"}),
        ("f ⁻¹' s", {"preimage"}),
        ("a ⊔ b ⊓ c", {"sup", "inf"}),
        (r"$a \mid b$", {"dvd"}),
        (r"$x \in \mathbb{R}$", {"mem", "real"}),
        ("less than or equal to", {"le"}),
        ("if and only if", {"iff"}),
        ("the order divides the group", {"divide", "group", "order"}),
    ],
)
def test_math_words(text: str, expected: set[str]) -> None:
    assert expected <= set(LeanTokenizer().tokenize(text))


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("groups", "group"),
        ("divides", "divide"),
        ("lattices", "lattice"),
        ("properties", "property"),
        ("boxes", "box"),
        ("classes", "class"),
        ("complexes", "complex"),
        ("series", "series"),  # not `sery`
        ("vertices", "vertex"),  # not `vertice`
        ("matrices", "matrix"),
        ("hypotheses", "hypothesis"),
        ("basis", "basis"),
        ("modulus", "modulus"),
    ],
)
def test_plural_stemmer(word: str, stem: str) -> None:
    assert LeanTokenizer().tokenize(word) == [stem]


def test_accents_are_folded_so_plain_spelling_matches() -> None:
    tok = LeanTokenizer()
    assert tok.tokenize("Bézout") == tok.tokenize("Bezout") == ["bezout"]  # not `b`, `zout`
    assert tok.tokenize("IsBezout") == ["bezout", "isbezout"]  # `is` is a stop word
    assert tok.tokenize("Fréchet derivative") == ["frechet", "derivative"]
    assert fold_accents("ℝ≥0∞ x₁") == "ℝ≥0∞ x₁"  # notation is not a letter with an accent: kept


def test_query_expansion_adds_name_words_once_with_a_lower_weight() -> None:
    tok = LeanTokenizer()
    terms = tok.query_terms("the sum of a geometric series")
    assert terms["geometric"] == 1.0 and terms["geom"] == 0.25 and "of" not in terms
    bounded = tok.query_terms("a set bounded above has a least upper bound")
    assert bounded["bddabove"] == 0.25 and bounded["upper"] == 1.0  # the longest phrase wins
    assert list(bounded).count("upper") == 1  # no `upper upper bound`
    assert tok.query_terms("neighbourhoods of a point")["nhd"] == 0.25  # `nhds` as documents index it
    assert tok.query_terms("Bézout's identity")["bezout"] == 1.0
    # typed words weigh 1 however often they occur; words inside Lean names stay (`of` in `lt_of_le`)
    assert tok.query_terms("the limit of a sum is the sum of the limits")["sum"] == 1.0
    assert tok.query_terms("lt_of_le")["of"] == 1.0
    # documents are never expanded
    assert "geom" not in tok.tokenize("the sum of a geometric series")
    plain = LeanTokenizer(TokenizerConfig(english_words=False))
    assert "geom" not in plain.query_terms("geometric series")
    with pytest.raises(ValueError, match="expansion_weight"):
        TokenizerConfig(expansion_weight=2.0)


def test_naming_table_holds_real_name_words() -> None:
    """Every key of `NAME_WORDS` is a token of some Mathlib declaration name (a compound counts)."""
    tok = LeanTokenizer()
    sample = [
        "geom_sum_eq", "BddAbove", "upperBounds", "lowerBounds", "IsLUB", "Filter.Tendsto.add", "nhds_le",
        "deriv_add", "Finset.card_le", "Nat.dvd_sub", "Real.sqrt_sq", "tsum_geometric",
    ]  # fmt: skip
    tokens = {t for name in sample for t in tok.name_tokens(name)}
    for word in ("geom", "BddAbove", "bdd", "upperBounds", "IsLUB", "tendsto", "nhds", "deriv", "card", "dvd", "sqrt"):
        assert word in NAME_WORDS and name_word_token(word) in tokens
    assert name_word_token("nhds") == "nhd" and name_word_token("BddAbove") == "bddabove"
    assert spell_name_word("geom") == "geometric" and spell_name_word("unknownword") == "unknownword"
    assert ("bounded", "above") in english_expansions()


def test_names_keep_compounds_and_drop_single_letters() -> None:
    tokens = LeanTokenizer().tokenize("theorem Finset.sum_image (x : α) : f x = g x")
    assert {"finset", "sum", "image", "sumimage", "theorem", "eq"} <= set(tokens)
    assert "x" not in tokens and "α" not in tokens
    plain = LeanTokenizer(TokenizerConfig(compounds=False, english_words=False, stem=False))
    assert "sumimage" not in plain.tokenize("Finset.sum_image")
    assert "sumimage" in LeanTokenizer().name_tokens("Finset.sum_image")
    assert plain.tokenize("groups") == ["groups"] and LeanTokenizer().tokenize("groups") == ["group"]


def test_result_titles_are_the_bold_names_of_a_docstring() -> None:
    doc = (
        "**Fermat's Little Theorem**: for all nonzero `a : ZMod p`, we have `a ^ (p - 1) = 1`. "
        "A restatement of **Fermat's Little Theorem**; compare **Euler's\ntheorem** and `a ** b`."
    )
    assert result_titles(doc) == ("Fermat's Little Theorem",)  # once; a name never spans lines
    assert result_titles(None) == () and result_titles("") == () and result_titles("no bold here") == ()
    assert result_titles("The **binomial theorem**") == ("binomial theorem",)


@pytest.mark.parametrize(
    ("docstring", "own"),
    [
        ("The **binomial theorem**", ("binomial theorem",)),
        ("**Fermat's Little Theorem**: for all nonzero `a : ZMod p`, ...", ("Fermat's Little Theorem",)),
        ("Lagrange's **four squares theorem** for a prime number.", ("four squares theorem",)),  # qualified
        ("Binary **rearrangement inequality**.", ("rearrangement inequality",)),
        ("The graph is unique. This is **Turán's theorem** restated.", ("Turán's theorem",)),  # a later sentence
        ("A special case of the **binomial theorem**", ()),  # a version of another declaration's result
        ("An auxiliary equality useful to prove the **Cauchy–Schwarz inequality**. Here ...", ()),
        ("Upgrade a `LinearMap` to a `ContinuousLinearMap` using the **closed graph theorem**.", ()),
        ("Equality case in the **Schwarz Lemma**: in the setup of ...", ()),
        ("Special case of **Chebyshev's Sum Inequality** or the **Cauchy-Schwarz Inequality**: ...", ()),
        ("A version of **Markov's inequality**. Here is the **Markov bound** itself.", ("Markov bound",)),
        ("Results:\n- **Foo theorem**: a sum of squares\n- **Bar lemma**: ...", ("Foo theorem", "Bar lemma")),
        (None, ()),
    ],
)
def test_own_titles_are_the_names_a_docstring_gives_its_own_declaration(docstring: str | None, own: tuple) -> None:
    assert own_titles(docstring) == own
    assert set(own) <= set(result_titles(docstring))


@pytest.mark.parametrize(
    ("title", "names_a_result"),
    [
        ("Fermat's Little Theorem", True),
        ("binomial theorem", True),
        ("law of cosines", True),
        ("Bolzano-Weierstrass", True),
        ("Cauchy–Schwarz", True),
        ("not", False),  # stress
        ("Do not use", False),
        ("finitely generated", False),  # a defined term: its declaration's name says it
        ("nowhere dense", False),
        ("Følner", False),  # one word
    ],
)
def test_a_bold_phrase_names_a_result_when_it_says_so(title: str, names_a_result: bool) -> None:
    assert is_result_name(title) is names_a_result


def test_typed_terms_are_the_terms_a_query_types() -> None:
    tok = LeanTokenizer()
    assert tok.typed_terms("Fermat's Little Theorem") == ["fermat", "fermats", "little", "theorem"]
    assert tok.typed_terms("the limit of a sum of limits") == ["limit", "sum"]  # distinct, no function words
    assert [t for t, w in tok.query_terms("sum of a geometric series").items() if w == 1.0] == tok.typed_terms(
        "sum of a geometric series"
    )
    with pytest.raises(TypeError):
        tok.typed_terms(None)  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_total_and_deterministic(text: str) -> None:
    tok = LeanTokenizer()
    first = tok.tokenize(text)
    assert first == LeanTokenizer().tokenize(text)
    assert all(isinstance(t, str) and t and t == t.lower() for t in first)


def test_config_round_trip() -> None:
    config = TokenizerConfig(stem=False)
    assert TokenizerConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown"):
        TokenizerConfig.from_json('{"bogus": true}')
