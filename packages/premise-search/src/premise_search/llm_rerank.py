"""An LLM yes/no reranker behind `rerank.Reranker`'s interface, after the paper's Qwen3-Reranker prompt.

The paper scores each (query, document) pair with Qwen3-Reranker-8B: the probability of "yes" over "yes"/"no"
after a prompt that asks whether the document meets the query under an instruction (spec §2.4). A chat API
does not expose those two logits, so `LLMReranker` asks the same question through any `LLMClient` and reads the
reply: a leading "yes"/"no" gives 1/0, a number in [0, 1] (or JSON `{"score": p}`) is taken as P(yes). Ties keep
the retriever's order (a tiny prior is added). If any call fails, the whole list falls back to the retriever's
order with scores `(n - i) / n`, as upstream does on reranker failure.

Use it by setting it on an engine: `engine.reranker = LLMReranker(llm)`, then `engine.search(q, rerank=True)`.
Each candidate costs one LLM call, so keep `rerank_depth` small.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from premise_search.corpus import Declaration
from premise_search.informalize import extract_json
from premise_search.llm import LLMClient, LLMError, messages
from repro_core.errors import ConfigError

__all__ = ["DEFAULT_INSTRUCTION", "LLMReranker", "parse_yes_no"]

logger = logging.getLogger(__name__)

#: The task instruction (our wording of LSv2's query instruction).
DEFAULT_INSTRUCTION = (
    "Given a query about mathematics in Lean 4 mathlib, judge whether the document is a mathlib item that is "
    "relevant to the query. A query asking for a theorem or lemma should match a theorem; a query asking for a "
    "definition should match a definition, structure, class or instance."
)

_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)

_NUMBER = re.compile(r"^\s*(0(?:\.\d+)?|1(?:\.0+)?)\b")


def parse_yes_no(reply: str) -> float | None:
    """P(yes) from a reply: "yes"/"no" first word → 1/0, a number in [0, 1], or JSON `{"score"|"yes": p}`."""
    text = reply.strip().strip("`*\"' ").lower()
    first = re.match(r"[a-z]+", text)
    if first and first.group(0) in ("yes", "no"):
        return 1.0 if first.group(0) == "yes" else 0.0
    number = _NUMBER.match(text)
    if number:
        return float(number.group(1))
    data = extract_json(reply)
    if data is not None:
        for key in ("score", "yes", "p_yes", "relevance"):
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
                return float(value)
            if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
                return 1.0 if value.strip().lower() == "yes" else 0.0
    return None


def _document(decl: Declaration, max_chars: int) -> str:
    parts = [f"{decl.kind} {decl.name}", decl.signature]
    if decl.informal_name or decl.informal_description:
        parts.append(f"{decl.informal_name or ''}: {decl.informal_description or ''}")
    if decl.docstring:
        parts.append(decl.docstring)
    text = "\n".join(p for p in parts if p)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class LLMReranker:
    """Pointwise yes/no reranking with an `LLMClient` (module docstring); honours `rerank.Reranker`.

    Args:
        llm: the model.
        instruction: the `<Instruct>` line.
        max_doc_chars: documents are cut from the back to this length (upstream truncates to 8,192 tokens).
    """

    def __init__(self, llm: LLMClient, *, instruction: str = DEFAULT_INSTRUCTION, max_doc_chars: int = 4000) -> None:
        if isinstance(max_doc_chars, bool) or not isinstance(max_doc_chars, int) or max_doc_chars < 16:
            raise ConfigError(f"max_doc_chars: expected an integer >= 16, got {max_doc_chars!r}")
        self.llm = llm
        self.instruction = instruction
        self.max_doc_chars = max_doc_chars
        self.failures = 0  # lists that fell back to retriever order

    @property
    def id(self) -> str:
        return f"llm-yes-no:{self.llm.id}"

    def prompt(self, query: str, decl: Declaration) -> list[dict[str, str]]:
        user = f"<Instruct>: {self.instruction}\n<Query>: {query}\n<Document>: {_document(decl, self.max_doc_chars)}"
        return messages(_SYSTEM, user)

    def rerank(
        self, query: str, candidates: Sequence[Declaration], scores: Sequence[float] | None = None
    ) -> list[tuple[int, float]]:
        """(position, score) best first; on an LLM error or an unreadable reply, the retriever's order.

        The retriever's `scores` are not used: the model judges each candidate on its own.
        """
        n = len(candidates)
        scored = []
        try:
            for i, decl in enumerate(candidates):
                reply = self.llm.complete(self.prompt(query, decl), temperature=0.0)
                p_yes = parse_yes_no(reply)
                if p_yes is None:
                    raise LLMError(f"reranker reply is neither yes nor no: {reply[:60]!r}")
                scored.append((i, p_yes + 1e-6 * (n - i) / n))
        except LLMError as exc:
            self.failures += 1
            logger.warning("LLM reranker failed (%s); keeping the retriever's order", exc)
            return [(i, (n - i) / n) for i in range(n)]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored
