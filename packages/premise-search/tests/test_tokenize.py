"""The Lean-aware tokenizer: identifier splitting, notation and LaTeX to Mathlib words, English additions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from premise_search.tokenize import LeanTokenizer, TokenizerConfig, split_identifier


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
        ("the order divides the group", {"divide", "dvd", "group"}),
    ],
)
def test_math_words(text: str, expected: set[str]) -> None:
    assert expected <= set(LeanTokenizer().tokenize(text))


def test_names_keep_compounds_and_drop_single_letters() -> None:
    tokens = LeanTokenizer().tokenize("theorem Finset.sum_image (x : α) : f x = g x")
    assert {"finset", "sum", "image", "sumimage", "theorem", "eq"} <= set(tokens)
    assert "x" not in tokens and "α" not in tokens
    plain = LeanTokenizer(TokenizerConfig(compounds=False, english_words=False, stem=False))
    assert "sumimage" not in plain.tokenize("Finset.sum_image")
    assert plain.tokenize("groups") == ["groups"] and LeanTokenizer().tokenize("groups") == ["group"]


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
