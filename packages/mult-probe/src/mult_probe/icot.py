"""Implicit chain of thought by stepwise internalisation (Deng, Choi & Shieber 2024): how the paper trains ICoT.

Training starts on the full CoT sequence and removes CoT tokens on a fixed schedule until none remain:

    a-digits * b-digits <eos> cot_0 .. cot_{L-1} <eos> #### c_0 .. c_{k+l-1} <eos>

- `steps_per_removed = round(steps_per_epoch / remove_per_epoch)` (Python's round, as Deng): one more token is
  scheduled for removal every that many steps after `pretrain_epochs`, starting from `remove_start_from`; so at
  global step s (0-based) `scheduled(s) = remove_start_from + max(0, s - pretrain_steps) // steps_per_removed`.
- Removal smoothing: each example removes `scheduled + o` tokens, `P(o) = (1 - e^-lambda) e^(-lambda o)` for
  o = 0..99 (the leftover mass on o = 99), lambda = 4 by default; never during pretraining or evaluation.
- Tokens are cut from the left of the CoT (`removal_side="left"`) or the right, and the sequence is re-packed
  (positions shift: Deng's `keep_position=False`). Once every token is gone it equals `data.encode_nocot`'s layout.
- Optimiser reset: a fresh AdamW whenever `scheduled` increases, unless the previous step had already removed the
  whole CoT. Deng tests "the previous *batch* had every CoT removed" including its random offsets; since a batch of
  32 with every offset >= 1 has probability ~1e-56, we use the deterministic `scheduled(s - 1) >= L`, which keeps
  the schedule a pure function of the step (resume and data parallelism need that).

Deviation: Deng's `round(steps_per_epoch / remove_per_epoch) == 0` removes one token per step even while
pretraining; we clamp `steps_per_removed` to >= 1 and keep pretraining CoT-complete.

CoT-aware evaluation (`evaluate_cot`): before the CoT is fully removed, the no-CoT evaluation asks the model for a
layout it has not been trained on yet. Deng et al. evaluate in the format the model is trained on at that moment:
prompt `a * b <eos>`, greedy generation of the remaining CoT, `<eos> #### answer`, answer read after `####`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mult_probe.data import ANSWER_MARK, EOS, CharTokenizer, answer_digits
from repro_core.config import checked_fields
from repro_core.errors import ConfigError, InputError
from repro_core.metrics import exact_match, per_position_accuracy
from repro_core.seeding import numpy_rng

if TYPE_CHECKING:
    from mult_probe.model import Transformer

__all__ = [
    "SMOOTHING_TRUNCATE",
    "CotBatch",
    "CotEvalResult",
    "IcotConfig",
    "cot_token_ids",
    "encode_cot",
    "evaluate_cot",
    "generate_cot",
    "optimizer_reset",
    "removal_offsets",
    "removed_at",
    "scheduled_removal",
    "smoothing_distribution",
    "steps_per_removed_token",
]

#: Offsets are drawn from 0 .. SMOOTHING_TRUNCATE - 1 (Deng's truncation at 100).
SMOOTHING_TRUNCATE = 100


@dataclass(frozen=True)
class IcotConfig:
    """The removal schedule; defaults are Deng et al.'s 4x4 settings (spec 4.3)."""

    remove_per_epoch: float = 8.0  #: CoT tokens removed per epoch, spread evenly over its steps
    removal_side: Literal["left", "right"] = "left"  #: cut from the start (paper) or the end of the CoT
    smoothing_lambda: float | None = 4.0  #: removal smoothing lambda; None disables smoothing (Deng's inf)
    reset_optimizer: bool = True  #: fresh AdamW whenever the scheduled count increases
    remove_start_from: int = 0  #: tokens removed from the first step on
    pretrain_epochs: int = 0  #: epochs trained on `remove_start_from` removed tokens before the schedule runs
    remove_all_beyond: int | None = None  #: once this many are scheduled, remove everything (None: never)
    steps_per_epoch: int | None = None  #: epoch length in steps; None: ceil(train_size / batch_size)

    def __post_init__(self) -> None:
        if not math.isfinite(self.remove_per_epoch) or self.remove_per_epoch <= 0:
            raise ConfigError(f"icot.remove_per_epoch: must be > 0, got {self.remove_per_epoch}")
        if self.removal_side not in ("left", "right"):
            raise ConfigError(f"icot.removal_side: must be 'left' or 'right', got {self.removal_side!r}")
        if self.smoothing_lambda is not None and not self.smoothing_lambda > 0:
            raise ConfigError(f"icot.smoothing_lambda: must be > 0 or None, got {self.smoothing_lambda}")
        for name in ("remove_start_from", "pretrain_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"icot.{name}: must be an integer >= 0, got {value!r}")
        for name in ("remove_all_beyond", "steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"icot.{name}: must be an integer >= 1 or None, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IcotConfig:
        return cls(**checked_fields(cls, data, "icot config"))


def steps_per_removed_token(steps_per_epoch: int, remove_per_epoch: float) -> int:
    """Steps between two removals: `round(steps_per_epoch / remove_per_epoch)`, at least 1 (Deng; 3156 for 4x4)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return max(1, round(steps_per_epoch / remove_per_epoch))


def scheduled_removal(step: int, steps_per_epoch: int, config: IcotConfig) -> float:
    """CoT tokens scheduled for removal at global step `step` (0-based); `math.inf` once `remove_all_beyond` is hit."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    counted = max(0, step - config.pretrain_epochs * steps_per_epoch)
    scheduled = config.remove_start_from + counted // steps_per_removed_token(steps_per_epoch, config.remove_per_epoch)
    if config.remove_all_beyond is not None and scheduled >= config.remove_all_beyond:
        return math.inf
    return scheduled


def removed_at(steps_done: int, steps_per_epoch: int, config: IcotConfig, cot_len: int) -> int:
    """CoT tokens removed (without smoothing) in the last step of a model trained for `steps_done` steps.

    The count the model was trained on most recently, so the one its CoT-aware evaluation uses; clipped to
    `cot_len` (`inf` after `remove_all_beyond` becomes the whole CoT). `steps_done = 0` gives the first step's count.
    """
    if steps_done < 0:
        raise ValueError(f"steps_done must be >= 0, got {steps_done}")
    return int(min(scheduled_removal(max(steps_done - 1, 0), steps_per_epoch, config), cot_len))


def optimizer_reset(step: int, steps_per_epoch: int, config: IcotConfig, cot_len: int) -> bool:
    """True when a fresh optimiser starts at step `step`: the count increased and the CoT was not yet gone."""
    if not config.reset_optimizer or step == 0:
        return False
    before = scheduled_removal(step - 1, steps_per_epoch, config)
    return scheduled_removal(step, steps_per_epoch, config) > before and before < cot_len


def smoothing_distribution(smoothing_lambda: float | None) -> np.ndarray:
    """`[100]` probabilities of the extra offset o: `(1 - e^-lambda) e^(-lambda o)`, the rest on o = 99."""
    probs = np.zeros(SMOOTHING_TRUNCATE)
    if smoothing_lambda is None:
        probs[0] = 1.0
        return probs
    probs[:] = (1.0 - math.exp(-smoothing_lambda)) * np.exp(-smoothing_lambda * np.arange(SMOOTHING_TRUNCATE))
    probs[-1] += max(0.0, 1.0 - probs.sum())
    return probs / probs.sum()


def removal_offsets(seed: int, step: int, n: int, smoothing_lambda: float | None) -> np.ndarray:
    """`[n]` int64 smoothing offsets of step `step`'s global batch: a pure function of (seed, step)."""
    if smoothing_lambda is None:
        return np.zeros(n, dtype=np.int64)
    rng = numpy_rng(seed, "mult-probe", "icot-offsets", step)
    return rng.choice(SMOOTHING_TRUNCATE, size=n, p=smoothing_distribution(smoothing_lambda)).astype(np.int64)


def _digit_columns(x: np.ndarray, width: int) -> np.ndarray:
    """`[n, width]` digits of x, least significant first."""
    return (x[:, None] // 10 ** np.arange(width, dtype=np.int64)) % 10


def cot_token_ids(
    pairs: np.ndarray, k: int, l: int | None = None, tokenizer: CharTokenizer | None = None
) -> np.ndarray:
    """`[n, cot_length(k, l)]` token ids of Deng's CoT `P_0 + P_1 ( R_1 ) + ... + P_{l-1}` (vectorised)."""
    l = k if l is None else l
    tok = tokenizer or CharTokenizer()
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise InputError(f"pairs must have shape [n, 2], got {pairs.shape}", field="pairs")
    if k + l > 18:
        raise ConfigError(f"k + l: {k} + {l} digits overflow int64; use k + l <= 18")
    a, b = pairs[:, 0], pairs[:, 1]
    n = len(pairs)
    symbol = lambda s: np.full((n, 1), tok.vocab[s], dtype=np.int64)  # noqa: E731
    parts: list[np.ndarray] = []
    total = np.zeros(n, dtype=np.int64)
    for j in range(l):
        partial = a * ((b // 10**j) % 10) * 10**j
        total = total + partial
        if j:
            parts.append(symbol("+"))
        parts.append(_digit_columns(partial, k + 1 + j))  # digit d has token id d
        if 1 <= j <= l - 2:
            parts += [symbol("("), _digit_columns(total, k + 1 + j), symbol(")")]
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class CotBatch:
    """Tokenised CoT sequences after removal, right-padded with `<pad>`.

    Attributes:
        input_ids: `[n, T]` int64 (T = the longest kept sequence).
        labels: `[n, T]` next-token targets; -100 up to and including the first `<eos>` and on padding.
        predict_positions: `[n, k+l]` the positions whose logits predict c_0 .. c_{k+l-1} (they differ per row
            when the rows removed different counts).
        removed: `[n]` CoT tokens removed from each row (clipped to the CoT length).
        cot_length: CoT tokens of the full sequence.
    """

    input_ids: np.ndarray
    labels: np.ndarray
    predict_positions: np.ndarray
    removed: np.ndarray
    cot_length: int


def encode_cot(
    pairs: np.ndarray,
    k: int,
    l: int | None = None,
    *,
    remove: np.ndarray | int | float = 0,
    side: Literal["left", "right"] = "left",
    tokenizer: CharTokenizer | None = None,
) -> CotBatch:
    """`input <eos> cot <eos> #### answer <eos>` with `remove` CoT tokens cut per row (scalar or `[n]`; inf: all)."""
    l = k if l is None else l
    tok = tokenizer or CharTokenizer()
    pairs = np.asarray(pairs, dtype=np.int64)
    cot = cot_token_ids(pairs, k, l, tok)
    n, cot_len = cot.shape
    if not np.all(np.asarray(remove) >= 0):
        raise ValueError("remove: counts must be >= 0")
    removed = np.minimum(np.broadcast_to(np.asarray(remove, dtype=np.float64), (n,)), cot_len).astype(np.int64)
    column = lambda s: np.full((n, 1), tok.vocab[s], dtype=np.int64)  # noqa: E731
    a_digits, b_digits = _digit_columns(pairs[:, 0], k), _digit_columns(pairs[:, 1], l)
    prefix = np.concatenate([a_digits, column("*"), b_digits, column(EOS)], axis=1)
    suffix = np.concatenate([column(EOS), column(ANSWER_MARK), answer_digits(pairs[:, 0], pairs[:, 1], k, l)], axis=1)
    full = np.concatenate([prefix, cot, suffix, column(EOS)], axis=1)  # [n, T_full]
    first = prefix.shape[1]  # the first CoT position
    pos = np.arange(full.shape[1])[None, :]
    cut_from = first + (0 if side == "left" else cot_len - removed[:, None])
    cut_to = cut_from + removed[:, None]
    keep = (pos < cut_from) | (pos >= cut_to)
    order = np.argsort(~keep, axis=1, kind="stable")  # kept positions first, in their original order
    lengths = full.shape[1] - removed
    ids = np.take_along_axis(full, order, axis=1)[:, : lengths.max()]
    valid = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    ids = np.where(valid, ids, tok.pad_id)
    labels = np.full_like(ids, -100)
    labels[:, :-1] = np.where(valid[:, 1:], ids[:, 1:], -100)
    labels[:, : first - 1] = -100  # no loss up to and including the first <eos> (it sits at first - 1)
    n_answer = k + l
    predict = lengths[:, None] - 2 - n_answer + np.arange(n_answer)[None, :]  # c_t predicted at the token before it
    return CotBatch(input_ids=ids, labels=labels, predict_positions=predict, removed=removed, cot_length=cot_len)


@dataclass(frozen=True)
class CotEvalResult:
    """Greedy evaluation in the format of `removed` cut CoT tokens (`evaluate_cot`).

    The answer is the k+l tokens after the first `####` the model writes (missing tokens count as wrong), so a model
    whose CoT is one token off still gets its answer scored; the CoT figures say how closely it follows Deng's CoT.
    """

    exact_match: float  #: every answer digit right (the main ICoT score before full removal)
    digit_accuracy: list[float]  #: per answer position c_0 .. c_{k+l-1}
    cot_token_accuracy: float | None  #: generated CoT tokens equal to the truncated reference, position by position
    cot_exact_match: float  #: the generated CoT (up to `<eos>`/`####`) equals the reference, length included
    removed: int  #: CoT tokens cut from the reference (`removal_side` end)
    cot_tokens: int  #: reference CoT tokens left to generate (None accuracy when 0)
    n: int  #: evaluation pairs

    @property
    def mean_digit_accuracy(self) -> float:
        return float(np.mean(self.digit_accuracy))


def _first_index(mask: np.ndarray) -> np.ndarray:
    """`[n]` column of the first True of each row of `mask: [n, T]`, T where there is none."""
    return np.where(mask.any(axis=1), mask.argmax(axis=1), mask.shape[1])


def generate_cot(
    model: Transformer,
    pairs: np.ndarray,
    k: int,
    l: int | None = None,
    *,
    removed: int | float = 0,
    side: Literal["left", "right"] = "left",
    slack: int = 4,
) -> tuple[np.ndarray, CotBatch]:
    """Greedy continuation of `a * b <eos>`: `[n, prompt + generated]` token ids and the reference `CotBatch`.

    Generates at most the reference's remaining CoT + `<eos> ####` + k+l answer tokens + `slack` (room for a model
    whose CoT runs a little long), stopping once every row has written `####` and k+l tokens after it.
    """
    torch = _torch()
    l = k if l is None else l
    if isinstance(slack, bool) or not isinstance(slack, int) or slack < 0:
        raise ValueError(f"slack: must be an integer >= 0, got {slack!r}")
    tok = CharTokenizer()
    reference = encode_cot(pairs, k, l, remove=removed, side=side, tokenizer=tok)
    prompt_len = k + l + 2  # a-digits * b-digits <eos>
    n_answer = k + l
    budget = reference.cot_length - int(reference.removed[0]) + 2 + n_answer + slack if len(pairs) else 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = torch.as_tensor(reference.input_ids[:, :prompt_len], device=device)
            mark_at = torch.full((len(out),), -1, dtype=torch.long, device=device)  # first `####` column
            for _ in range(budget):
                next_token = model(out)[:, -1].argmax(dim=-1)
                is_mark = (next_token == tok.answer_mark_id) & (mark_at < 0)
                mark_at = torch.where(is_mark, torch.full_like(mark_at, out.shape[1]), mark_at)
                out = torch.cat([out, next_token[:, None]], dim=1)
                if bool(((mark_at >= 0) & (out.shape[1] - 1 - mark_at >= n_answer)).all()):
                    break
    finally:
        model.train(was_training)
    return out.cpu().numpy(), reference


def _torch() -> Any:
    from repro_core.optional import require

    return require("torch", "CoT-aware ICoT evaluation")


def evaluate_cot(
    model: Transformer,
    pairs: np.ndarray,
    k: int,
    l: int | None = None,
    *,
    removed: int | float = 0,
    side: Literal["left", "right"] = "left",
    batch_size: int = 500,
    slack: int = 4,
) -> CotEvalResult:
    """Exact match and per-digit accuracy of the answer an ICoT model writes after its own greedy CoT.

    Args:
        model: the transformer (put in eval mode for the call, restored afterwards).
        pairs: `[n, 2]` operand pairs.
        removed: CoT tokens cut at `side` (`removed_at` gives a checkpoint's count; >= the CoT length or inf: the
            no-CoT layout `a * b <eos> <eos> #### answer`, generated from `a * b <eos>`).
        batch_size: pairs per generation batch.
        slack: extra generation steps beyond the reference length (`generate_cot`).
    """
    l = k if l is None else l
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
    pairs = np.asarray(pairs, dtype=np.int64)
    if len(pairs) == 0:
        raise InputError("pairs: no evaluation pairs", field="pairs")
    tok = CharTokenizer()
    n_answer, prompt_len = k + l, k + l + 2
    answers, refs, gen_answers, gen_cots, cot_ok_len = [], [], [], [], []
    n_removed = cot_len = 0
    for start in range(0, len(pairs), batch_size):
        seqs, reference = generate_cot(
            model, pairs[start : start + batch_size], k, l, removed=removed, side=side, slack=slack
        )
        cot_len, n_removed = reference.cot_length, int(reference.removed[0])
        kept = cot_len - n_removed
        gen = seqs[:, prompt_len:]  # [B, T_gen]
        padded = np.concatenate([gen, np.full((len(gen), n_answer + kept + 1), -1, dtype=gen.dtype)], axis=1)
        mark = _first_index(gen == tok.answer_mark_id)  # T_gen when the model never wrote ####
        cot_end = np.minimum(_first_index(gen == tok.eos_id), mark)
        rows = np.arange(len(gen))[:, None]
        answer_cols = np.where(mark[:, None] < gen.shape[1], mark[:, None] + 1 + np.arange(n_answer), -1)
        gen_answers.append(np.where(answer_cols >= 0, padded[rows, answer_cols], -1))
        cot_cols = np.arange(kept)[None, :]
        gen_cots.append(np.where(cot_cols < cot_end[:, None], padded[:, :kept], -1))
        cot_ok_len.append(cot_end == kept)
        refs.append(reference.input_ids[:, prompt_len : prompt_len + kept])
        answers.append(reference.input_ids[:, prompt_len + kept + 2 : prompt_len + kept + 2 + n_answer])
    ans, got = np.concatenate(answers), np.concatenate(gen_answers)
    ref_cot, got_cot, right_len = np.concatenate(refs), np.concatenate(gen_cots), np.concatenate(cot_ok_len)
    kept = cot_len - n_removed
    if kept:
        token_accuracy: float | None = float(np.mean(got_cot == ref_cot))
        cot_exact = float(np.mean(np.all(got_cot == ref_cot, axis=1) & right_len))
    else:
        token_accuracy, cot_exact = None, float(np.mean(right_len))
    return CotEvalResult(
        exact_match=float(exact_match(got, ans)),
        digit_accuracy=per_position_accuracy(got, ans).tolist(),
        cot_token_accuracy=token_accuracy,
        cot_exact_match=cot_exact,
        removed=n_removed,
        cot_tokens=kept,
        n=len(ans),
    )
