"""Multiplication data in Deng et al.'s format: lines, running sums, seeded splits and a character vocabulary.

A line is `input||cot #### answer`, tokens separated by single spaces, every number written least significant
digit first. For `a` with k digits and `b` with l digits (b_j the j-th digit of b):

- partial products `P_j = a * b_j * 10^j` and running sums `R_j = P_0 + ... + P_j`, each written reversed and
  zero-padded to `k + 1 + j` digits;
- the CoT is `P_0 + P_1 ( R_1 ) + ... + P_{l-2} ( R_{l-2} ) + P_{l-1}`; the answer has `k + l` digits.

This rule reproduces Deng et al.'s 4x4 `valid.txt` and `test_bigbench.txt` byte for byte. The no-CoT line (the
format after full internalisation) is `input|| #### answer`.

The paper's running sums (Eq. 1-2): `s_t = sum_{i+j=t} a_i b_j`, `c_hat_t = s_t + r_{t-1}`, `r_t = c_hat_t // 10`,
`c_t = c_hat_t % 10` (`r_{-1} = 0`), for t = 0 .. k+l-1; `c` is the reversed, zero-padded product.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro_core.errors import ConfigError, InputError
from repro_core.seeding import numpy_rng

__all__ = [
    "ANSWER_MARK",
    "EOS",
    "PAD",
    "CharTokenizer",
    "Example",
    "NoCotBatch",
    "RunningSums",
    "answer_digits",
    "cot_length",
    "cot_line",
    "digits",
    "encode_nocot",
    "generate_operands",
    "generate_split",
    "nocot_line",
    "number_from_digits",
    "parse_line",
    "read_examples",
    "read_numbered_examples",
    "running_sums",
    "running_sums_batch",
    "write_lines",
]

#: The separator Deng et al. put before the answer.
ANSWER_MARK = "####"
#: End-of-sequence / separator token (GPT-2's `<|endoftext|>` in the paper).
EOS = "<eos>"
#: Padding token (never a training target).
PAD = "<pad>"


def _check_width(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: the number of digits must be an integer >= 1, got {value!r}")
    return int(value)


def _check_operand(name: str, value: int, width: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"must be an integer, got {type(value).__name__}", field=name)
    value = int(value)
    if not 0 <= value < 10**width:
        raise InputError(f"{value} does not fit in {width} digits", field=name)
    return value


def digits(n: int, width: int) -> list[int]:
    """The `width` decimal digits of `n >= 0`, least significant first (zero-padded at the end)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n >= 10**width:
        raise ValueError(f"n = {n} has more than width = {width} digits")
    return [(n // 10**i) % 10 for i in range(width)]


def number_from_digits(ds: Iterable[int]) -> int:
    """Inverse of `digits`: least-significant-first digits to an integer."""
    return sum(int(d) * 10**i for i, d in enumerate(ds))


def _rev(n: int, width: int) -> str:
    return " ".join(str(d) for d in digits(n, width))


@dataclass(frozen=True)
class RunningSums:
    """Per answer position t = 0 .. k+l-1: column sum `s`, running sum `c_hat`, carry `r`, digit `c` (all lists)."""

    s: list[int]
    c_hat: list[int]
    carry: list[int]
    c: list[int]


def running_sums(a: int, b: int, k: int, l: int | None = None) -> RunningSums:
    """The paper's s, c_hat, r and c for `a` (k digits) times `b` (l digits, default k)."""
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    a, b = _check_operand("a", a, k), _check_operand("b", b, l)
    ad, bd = digits(a, k), digits(b, l)
    s = [sum(ad[i] * bd[t - i] for i in range(k) if 0 <= t - i < l) for t in range(k + l)]
    c_hat, carry, c = [], [], []
    r = 0
    for t in range(k + l):
        value = s[t] + r
        r = value // 10
        c_hat.append(value)
        carry.append(r)
        c.append(value % 10)
    return RunningSums(s=s, c_hat=c_hat, carry=carry, c=c)


def _check_int64(k: int, l: int) -> None:
    if k + l > 18:
        raise ConfigError(f"k + l: {k} + {l} digits overflow int64 in the vectorised path; use k + l <= 18")


def running_sums_batch(a: np.ndarray, b: np.ndarray, k: int, l: int | None = None) -> np.ndarray:
    """Vectorised c_hat for many operand pairs (k + l <= 18, the int64 range).

    Args:
        a: `[n]` integers with at most k digits; b: `[n]` with at most l digits.
    Returns:
        `[n, k + l]` int64 running sums c_hat_t (c_t = c_hat % 10, r_t = c_hat // 10).
    """
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    _check_int64(k, l)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of the same length, got {a.shape} and {b.shape}")
    ad = (a[:, None] // 10 ** np.arange(k)) % 10  # [n, k]
    bd = (b[:, None] // 10 ** np.arange(l)) % 10  # [n, l]
    s = np.zeros((a.shape[0], k + l), dtype=np.int64)
    for i in range(k):
        s[:, i : i + l] += ad[:, i : i + 1] * bd
    c_hat = np.empty_like(s)
    r = np.zeros(a.shape[0], dtype=np.int64)
    for t in range(k + l):
        c_hat[:, t] = s[:, t] + r
        r = c_hat[:, t] // 10
    return c_hat


def answer_digits(a: np.ndarray, b: np.ndarray, k: int, l: int | None = None) -> np.ndarray:
    """`[n, k + l]` digits of a*b, least significant first (k + l <= 18: products below 2**63)."""
    l = k if l is None else l
    _check_int64(k, l)
    prod = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    return (prod[:, None] // 10 ** np.arange(k + l, dtype=np.int64)) % 10


def cot_line(a: int, b: int, k: int, l: int | None = None) -> str:
    """Deng et al.'s line `input||cot #### answer` for a (k digits) times b (l digits; default k), no newline."""
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    a, b = _check_operand("a", a, k), _check_operand("b", b, l)
    parts = []
    total = 0
    for j, b_j in enumerate(digits(b, l)):
        partial = a * b_j * 10**j
        total += partial
        part = _rev(partial, k + 1 + j)
        if 1 <= j <= l - 2:
            part += f" ( {_rev(total, k + 1 + j)} )"
        parts.append(part)
    return f"{_rev(a, k)} * {_rev(b, l)}||{' + '.join(parts)} {ANSWER_MARK} {_rev(a * b, k + l)}"


def nocot_line(a: int, b: int, k: int, l: int | None = None) -> str:
    """The line without chain of thought, `input|| #### answer` (Deng's parser reads an empty CoT)."""
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    a, b = _check_operand("a", a, k), _check_operand("b", b, l)
    return f"{_rev(a, k)} * {_rev(b, l)}|| {ANSWER_MARK} {_rev(a * b, k + l)}"


def cot_length(k: int, l: int | None = None) -> int:
    """Number of CoT tokens: sum_j (k+1+j) for the partial products, the parenthesised sums, the '+' signs."""
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    partials = sum(k + 1 + j for j in range(l))
    sums = sum(k + 1 + j + 2 for j in range(1, l - 1))
    return partials + sums + (l - 1)


@dataclass(frozen=True)
class Example:
    """One parsed line: operands, their digit counts, and whether it carried a CoT."""

    a: int
    b: int
    k: int
    l: int
    has_cot: bool


def _parse_number(tokens: list[str], bad: Callable[[str, str], InputError], field: str) -> tuple[int, int]:
    if not tokens or any(len(t) != 1 or not t.isdigit() for t in tokens):
        raise bad(f"expected space-separated digits, got {' '.join(tokens)!r}", field)
    return number_from_digits(int(t) for t in tokens), len(tokens)


def parse_line(line: str, *, path: str | os.PathLike[str] | None = None, line_no: int | None = None) -> Example:
    """Parse a CoT or no-CoT line and check it against the rule (CoT, answer); bad lines raise `InputError`."""

    def bad(message: str, field: str) -> InputError:
        return InputError(message, path=path, line=line_no, field=field)

    text = line.rstrip("\n")
    if text.count("||") != 1:
        raise bad("expected exactly one '||' between input and target", "line")
    source, target = text.split("||")
    left, star, right = source.partition(" * ")
    if not star:
        raise bad("expected 'a-digits * b-digits' before '||'", "input")
    a, k = _parse_number(left.split(" "), bad, "a")
    b, l = _parse_number(right.split(" "), bad, "b")
    has_cot = not target.startswith(f" {ANSWER_MARK} ")
    expected = cot_line(a, b, k, l) if has_cot else nocot_line(a, b, k, l)
    if text != expected:
        got_answer = target.rpartition(f"{ANSWER_MARK} ")[2]
        if got_answer != expected.rpartition(f"{ANSWER_MARK} ")[2]:
            raise bad(f"answer {got_answer!r} is not {a} * {b} reversed to {k + l} digits", "answer")
        raise bad("chain of thought does not follow Deng et al.'s rule", "cot")
    return Example(a=a, b=b, k=k, l=l, has_cot=has_cot)


def read_numbered_examples(path: str | os.PathLike[str]) -> list[tuple[int, Example]]:
    """Parse every non-empty line of a Deng-format file, with its 1-based line number (for errors found later).

    Lines are decoded one by one, so bytes that are not UTF-8 raise `InputError` naming the file and line.
    """
    path = Path(path)
    out = []
    for line_no, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
            raise InputError(message, path=path, line=line_no, field="line") from None
        if line.strip():
            out.append((line_no, parse_line(line, path=path, line_no=line_no)))
    return out


def read_examples(path: str | os.PathLike[str]) -> list[Example]:
    """Parse every non-empty line of a Deng-format file."""
    return [example for _, example in read_numbered_examples(path)]


def write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> Path:
    """Write lines with a trailing newline each (Deng's files end with one)."""
    from repro_core.checkpoint import atomic_write_text

    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
    return Path(path)


def generate_operands(
    k: int,
    l: int | None = None,
    *,
    n: int,
    seed: int,
    exclude: Iterable[tuple[int, int]] = (),
    unique: bool = True,
) -> np.ndarray:
    """`[n, 2]` int64 operand pairs, uniform in [10^(k-1), 10^k - 1] x [10^(l-1), 10^l - 1], seeded.

    Pairs in `exclude` (held-out valid/test operands) never occur; with `unique` no pair repeats. The draw depends
    only on (seed, k, l), so the first m pairs of a larger split equal the split of size m.
    """
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    if n < 0:
        raise ConfigError(f"n: must be >= 0, got {n}")
    lo_a, hi_a, lo_b, hi_b = 10 ** (k - 1), 10**k, 10 ** (l - 1), 10**l
    banned = {(int(x), int(y)) for x, y in exclude}
    available = (hi_a - lo_a) * (hi_b - lo_b) - sum(lo_a <= x < hi_a and lo_b <= y < hi_b for x, y in banned)
    if unique and n > available:
        raise ConfigError(f"n: asked for {n} unique pairs but only {available} exist for {k}x{l} after exclusions")
    rng = numpy_rng(seed, "mult-probe", "operands", k, l)
    out = np.empty((n, 2), dtype=np.int64)
    seen: set[tuple[int, int]] = set()
    filled = 0
    while filled < n:
        chunk = max(1024, 2 * (n - filled))
        xs = rng.integers(lo_a, hi_a, size=chunk)
        ys = rng.integers(lo_b, hi_b, size=chunk)
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            pair = (x, y)
            if pair in banned or (unique and pair in seen):
                continue
            if unique:
                seen.add(pair)
            out[filled] = pair
            filled += 1
            if filled == n:
                break
    return out


def generate_split(
    k: int,
    l: int | None = None,
    *,
    n: int,
    seed: int,
    exclude: Iterable[tuple[int, int]] = (),
    cot: bool = True,
) -> list[str]:
    """`n` seeded lines (CoT or no-CoT) for k-by-l multiplication, excluding the `exclude` operand pairs."""
    l = k if l is None else l
    pairs = generate_operands(k, l, n=n, seed=seed, exclude=exclude)
    make = cot_line if cot else nocot_line
    return [make(int(x), int(y), k, l) for x, y in pairs]


class CharTokenizer:
    """A 17-symbol vocabulary: digits, `* + ( )`, `####`, `<eos>`, `<pad>` (one token per space-separated item).

    GPT-2's BPE would spend 38.6M embedding parameters on ~15 used rows; ids here are stable and documented.
    """

    TOKENS: tuple[str, ...] = (*"0123456789", "*", "+", "(", ")", ANSWER_MARK, EOS, PAD)

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(self.TOKENS)}

    def __len__(self) -> int:
        return len(self.TOKENS)

    @property
    def eos_id(self) -> int:
        return self.vocab[EOS]

    @property
    def pad_id(self) -> int:
        return self.vocab[PAD]

    @property
    def answer_mark_id(self) -> int:
        return self.vocab[ANSWER_MARK]

    def encode(self, tokens: str | Sequence[str]) -> list[int]:
        """Token ids of a space-separated string or a token list; unknown symbols raise `InputError`."""
        items = tokens.split() if isinstance(tokens, str) else list(tokens)
        try:
            return [self.vocab[t] for t in items]
        except KeyError as exc:
            raise InputError(
                f"unknown token {exc.args[0]!r}; vocabulary: {' '.join(self.TOKENS)}", field="tokens"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Space-separated tokens for `ids`."""
        return " ".join(self.TOKENS[int(i)] for i in ids)


@dataclass(frozen=True)
class NoCotBatch:
    """Tokenised no-CoT sequences `a-digits * b-digits <eos> <eos> #### c_0 .. c_{k+l-1} <eos>` (fixed length).

    Attributes:
        input_ids: `[n, T]` int64, T = 2(k+l) + 5.
        labels: `[n, T]` next-token targets (`input_ids` shifted left); -100 up to and including the first
            `<eos>` (Deng's masking) and at the last position.
        answer: `[n, k+l]` int64 answer digits c_t.
        c_hat: `[n, k+l]` int64 running sums.
        predict_positions: the positions whose logits predict c_0 .. c_{k+l-1} (`[k+l]`).
        c_token_positions: the positions holding c_0 .. c_{k+l-1}; the probe pairing reads c_hat_t here.
        prompt_length: tokens before c_0 (the greedy decoding prompt).

    Our c_0 is predicted at position k+l+3 (the `####` token); in the paper's GPT-2 layout (trailing-space token,
    `####` as two tokens) it is position 13 for 4x4. In both, c_t is predicted at the token of c_{t-1}.
    """

    input_ids: np.ndarray
    labels: np.ndarray
    answer: np.ndarray
    c_hat: np.ndarray
    predict_positions: np.ndarray
    c_token_positions: np.ndarray
    prompt_length: int


def encode_nocot(pairs: np.ndarray, k: int, l: int | None = None, tokenizer: CharTokenizer | None = None) -> NoCotBatch:
    """Tokenise operand pairs `[n, 2]` into the fixed-length no-CoT layout (vectorised)."""
    l = k if l is None else l
    k, l = _check_width("k", k), _check_width("l", l)
    tok = tokenizer or CharTokenizer()
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise InputError(f"pairs must have shape [n, 2], got {pairs.shape}", field="pairs")
    a, b = pairs[:, 0], pairs[:, 1]
    if (a < 0).any() or (a >= 10**k).any() or (b < 0).any() or (b >= 10**l).any():
        raise InputError(f"operands must have at most {k} and {l} digits", field="pairs")
    n = pairs.shape[0]
    ad = (a[:, None] // 10 ** np.arange(k)) % 10
    bd = (b[:, None] // 10 ** np.arange(l)) % 10
    answer = answer_digits(a, b, k, l)
    vocab = tok.vocab
    col = lambda token: np.full((n, 1), vocab[token], dtype=np.int64)  # noqa: E731
    prompt = np.concatenate([ad, col("*"), bd, col(EOS), col(EOS), col(ANSWER_MARK)], axis=1)
    ids = np.concatenate([prompt, answer, col(EOS)], axis=1)
    labels = np.full_like(ids, -100)
    labels[:, :-1] = ids[:, 1:]
    first_eos = k + l + 1
    labels[:, :first_eos] = -100  # targets up to and including the first <eos> are not trained
    p = prompt.shape[1]
    return NoCotBatch(
        input_ids=ids,
        labels=labels,
        answer=answer,
        c_hat=running_sums_batch(a, b, k, l),
        predict_positions=np.arange(p - 1, p - 1 + k + l),
        c_token_positions=np.arange(p, p + k + l),
        prompt_length=p,
    )
