"""Data: Deng et al.'s line format byte for byte, running sums against Python integers, splits, tokenisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mult_probe.data import (
    CharTokenizer,
    answer_digits,
    cot_length,
    cot_line,
    digits,
    encode_nocot,
    generate_operands,
    generate_split,
    nocot_line,
    number_from_digits,
    parse_line,
    read_examples,
    running_sums,
    running_sums_batch,
    write_lines,
)
from repro_core.errors import ConfigError, InputError

FIXTURES = Path(__file__).parent / "fixtures"


def _regenerate(path: Path) -> str:
    """Rebuild a Deng file from the operands of its lines (the parser checks each line on the way)."""
    return "".join(cot_line(e.a, e.b, e.k, e.l) + "\n" for e in read_examples(path))


@pytest.mark.parametrize("name", ["deng_4x4_valid_sample.txt", "deng_4x4_test_sample.txt"])
def test_golden_fixture_lines(name: str) -> None:
    path = FIXTURES / name
    assert _regenerate(path) == path.read_text(encoding="utf-8")


def test_first_valid_line_is_the_spec_example() -> None:
    assert cot_line(2365, 4347, 4) == (
        "5 6 3 2 * 7 4 3 4||5 5 5 6 1 + 0 0 6 4 9 0 ( 5 5 1 1 1 1 ) + 0 0 5 9 0 7 0 ( 5 5 6 0 2 8 0 ) + "
        "0 0 0 0 6 4 9 0 #### 5 5 6 0 8 2 0 1"
    )
    assert nocot_line(2365, 4347, 4) == "5 6 3 2 * 7 4 3 4|| #### 5 5 6 0 8 2 0 1"
    assert cot_line(12, 34, 2) == "2 1 * 4 3||8 4 0 + 0 6 3 0 #### 8 0 4 0"  # k = 2: no parenthesised sums


@pytest.mark.parametrize("split", ["valid.txt", "test.txt"])
def test_full_deng_files_byte_for_byte(shared_data: Path, split: str) -> None:
    path = shared_data / "mult-probe" / "4_by_4_mult" / split
    if not path.is_file():
        pytest.skip(f"{path} not found")
    raw = path.read_bytes()
    assert len(raw) == 132_000
    assert _regenerate(path).encode("utf-8") == raw


@given(k=st.integers(1, 11), l=st.integers(1, 11), data=st.data())
def test_running_sums_match_python_integers(k: int, l: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, 10**k - 1))
    b = data.draw(st.integers(0, 10**l - 1))
    rs = running_sums(a, b, k, l)
    assert rs.c == digits(a * b, k + l)  # the reversed digits of a*b
    assert number_from_digits(rs.c) == a * b
    assert all(c == ch % 10 and r == ch // 10 for c, ch, r in zip(rs.c, rs.c_hat, rs.carry, strict=True))
    assert rs.carry[-1] == 0 and rs.s[-1] == 0
    # c_hat_t = s_t + r_{t-1}, and s_t is the column sum of digit products
    ad, bd = digits(a, k), digits(b, l)
    for t in range(k + l):
        assert rs.s[t] == sum(ad[i] * bd[j] for i in range(k) for j in range(l) if i + j == t)
        assert rs.c_hat[t] == rs.s[t] + (rs.carry[t - 1] if t else 0)
    # the running sum is the product's value below column t, shifted: sum_{u<=t} s_u 10^u = c_hat_t 10^t + low
    for t in range(k + l):
        low = sum(rs.s[u] * 10**u for u in range(t + 1))
        assert low // 10**t == rs.c_hat[t] and low % 10**t == number_from_digits(rs.c[:t])
    if k + l <= 18:
        batch = running_sums_batch(np.array([a]), np.array([b]), k, l)
        assert batch[0].tolist() == rs.c_hat
        assert answer_digits(np.array([a]), np.array([b]), k, l)[0].tolist() == rs.c


@given(k=st.integers(2, 11), data=st.data())
def test_cot_length_formula_and_line_round_trip(k: int, data: st.DataObject) -> None:
    l = data.draw(st.integers(2, 11))
    a = data.draw(st.integers(10 ** (k - 1), 10**k - 1))
    b = data.draw(st.integers(10 ** (l - 1), 10**l - 1))
    line = cot_line(a, b, k, l)
    cot = line.split("||")[1].split(" #### ")[0]
    assert len(cot.split(" ")) == cot_length(k, l)
    if k == l:  # the spec's closed form for square problems
        formula = sum(k + 1 + j for j in range(k)) + sum(k + 1 + j for j in range(1, k - 1)) + 2 * (k - 2) + k - 1
        assert cot_length(k) == formula
    example = parse_line(line)
    assert (example.a, example.b, example.k, example.l, example.has_cot) == (a, b, k, l, True)
    assert parse_line(nocot_line(a, b, k, l)).has_cot is False


def test_cot_lengths_of_the_spec() -> None:
    assert [cot_length(k) for k in (2, 3, 4, 5, 7, 9, 11)] == [8, 24, 46, 74, 148, 246, 368]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("5 6 3 2 * 7 4 3 4 #### 5", "line"),
        ("5 6 3 2 7 4 3 4|| #### 5", "input"),
        ("5 x 3 2 * 7 4 3 4|| #### 5 5 6 0 8 2 0 1", "a"),
        ("5 6 3 2 * 7 4 3 4|| #### 5 5 6 0 8 2 0 2", "answer"),
        ("5 6 3 2 * 7 4 3 4||5 5 5 6 1 + 0 0 6 4 9 1 #### 5 5 6 0 8 2 0 1", "cot"),
    ],
)
def test_bad_lines_name_the_field(line: str, field: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(cot_line(2365, 4347, 4) + "\n" + line + "\n")
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert info.value.line == 2 and info.value.field == field and str(path) in str(info.value)


def test_generate_split_is_seeded_and_excludes_held_out(tmp_path: Path) -> None:
    held_out = [(e.a, e.b) for e in read_examples(FIXTURES / "deng_4x4_valid_sample.txt")]
    first = generate_split(4, n=200, seed=3, exclude=held_out)
    assert first == generate_split(4, n=200, seed=3, exclude=held_out)
    assert first != generate_split(4, n=200, seed=4, exclude=held_out)
    assert first[:50] == generate_split(4, n=50, seed=3, exclude=held_out)
    pairs = {(e.a, e.b) for e in map(parse_line, first)}
    assert len(pairs) == 200 and not pairs & set(held_out)
    assert all(1000 <= a <= 9999 and 1000 <= b <= 9999 for a, b in pairs)
    # every 2x2 pair but the held-out ones: exclusion is exact, and asking for more fails clearly
    everything = generate_operands(2, n=8100 - 2, seed=0, exclude=[(10, 10), (99, 99)])
    assert {(10, 10), (99, 99)}.isdisjoint(map(tuple, everything.tolist()))
    with pytest.raises(ConfigError, match="n:"):
        generate_operands(2, n=8100, seed=0, exclude=[(10, 10)])
    out = write_lines(tmp_path / "train.txt", first[:3])
    assert out.read_text() == "".join(f"{x}\n" for x in first[:3])
    rect = generate_split(2, 3, n=5, seed=0, cot=False)
    assert all(parse_line(x).l == 3 for x in rect)


def test_tokenizer_and_nocot_layout() -> None:
    tok = CharTokenizer()
    assert len(tok) == 17
    line = cot_line(2365, 4347, 4)
    text = line.replace("||", " <eos> ") + " <eos>"
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(InputError, match="unknown token"):
        tok.encode("1 2 ?")
    batch = encode_nocot(np.array([[2365, 4347], [1000, 1000]]), 4)
    assert batch.input_ids.shape == (2, 21) and batch.prompt_length == 12
    assert tok.decode(batch.input_ids[0]) == "5 6 3 2 * 7 4 3 4 <eos> <eos> #### 5 5 6 0 8 2 0 1 <eos>"
    # no loss up to and including the first <eos> (position 9); targets are the next tokens afterwards
    assert (batch.labels[:, :9] == -100).all() and (batch.labels[:, 9:-1] == batch.input_ids[:, 10:]).all()
    assert (batch.labels[:, -1] == -100).all()
    assert batch.input_ids[0, batch.predict_positions + 1].tolist() == batch.answer[0].tolist()
    assert batch.c_token_positions.tolist() == list(range(12, 20))
    assert batch.c_hat[0].tolist() == running_sums(2365, 4347, 4).c_hat
    with pytest.raises(InputError, match="at most"):
        encode_nocot(np.array([[12345, 1]]), 4)
