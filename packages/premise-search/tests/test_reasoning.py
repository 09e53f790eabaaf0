"""Reasoning mode: limits of the loop, fallbacks for malformed LLM answers, DCG ranking, determinism, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from premise_search.cli import main
from premise_search.corpus import Declaration, write_jsonl
from premise_search.llm import ScriptedLLM
from premise_search.reasoning import (
    LLMPlanner,
    OfflinePlanner,
    Plan,
    PlanStep,
    ReasoningConfig,
    ReasoningEngine,
    ReasoningProblem,
    dcg_vote,
    parse_formal_statement,
)
from premise_search.retrieval import SearchEngine
from repro_core.errors import ConfigError, InputError
from repro_core.testing import run_cli


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline defaults are under test: a developer's PREMISE_SEARCH_LLM_* variables must not leak in."""
    for suffix in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT"):
        monkeypatch.delenv(f"PREMISE_SEARCH_LLM_{suffix}", raising=False)


FORMAL = """import Mathlib

open Finset

variable {G : Type*} [Group G]

/-- A helper. -/
def helper : ℕ := 0

/-- **Main result.** The order of an element divides the cardinality of the group. -/
@[simp]
theorem orderOf_dvd_card' [Fintype G] (x : G) (hx : x ≠ 1) :
    orderOf x ∣ Fintype.card G ∧ 0 < orderOf x := sorry
"""
INFORMAL = "For a finite group G and an element x, the order of x divides the cardinality of G, and it is positive."


def _corpus() -> list[Declaration]:
    rows = [
        Declaration("orderOf", "def", "Mathlib.GroupTheory.OrderOfElement", "def orderOf (x : G) : ℕ"),
        Declaration(
            "orderOf_dvd_card",
            "theorem",
            "Mathlib.GroupTheory.OrderOfElement",
            "theorem orderOf_dvd_card [Fintype G] {x : G} : orderOf x ∣ Fintype.card G",
            docstring="The order of an element divides the cardinality of the group.",
        ),
        Declaration(
            "orderOf_pos",
            "theorem",
            "Mathlib.GroupTheory.OrderOfElement",
            "theorem orderOf_pos [Finite G] (x : G) : 0 < orderOf x",
        ),
        Declaration("Fintype.card", "def", "Mathlib.Data.Fintype.Card", "def Fintype.card (α : Type*) [Fintype α] : ℕ"),
        Declaration("Fintype", "class", "Mathlib.Data.Fintype.Defs", "class Fintype (α : Type*)"),
    ]
    for i in range(40):  # distractors, so every query has more than 20 results
        rows.append(
            Declaration(f"Filler.lemma_{i}", "theorem", "Mathlib.Filler", f"theorem Filler.lemma_{i} : group order {i}")
        )
    return rows


@pytest.fixture(scope="module")
def engine() -> SearchEngine:
    return SearchEngine.build(_corpus())


def test_parse_formal_statement() -> None:
    parts = parse_formal_statement(FORMAL)
    assert parts is not None and parts.name == "orderOf_dvd_card'"
    assert parts.binders == ("Fintype G", "G", "x ≠ 1")
    assert parts.conclusion == "orderOf x ∣ Fintype.card G ∧ 0 < orderOf x"
    assert parts.docstring.startswith("**Main result.**") and parts.namespaces == ("Finset",)
    assert parse_formal_statement("def x : ℕ := 0") is None
    example = parse_formal_statement("example (h : a ≤ b) : a < b + 1 := by omega")
    assert example is not None and example.binders == ("a ≤ b",) and example.conclusion == "a < b + 1"


def test_dcg_vote_and_plan_queries() -> None:
    ranking = dcg_vote([["a", "b"], ["b", "c"], ["c"]])
    # a: 1 (first of list 1); b: 1/log2(3) + 1; c: 1/log2(3) + 1, tied with b but seen later
    assert [name for name, _, _ in ranking] == ["b", "c", "a"]
    assert [s for _, s, _ in ranking] == pytest.approx([1 + 1 / math.log2(3), 1 + 1 / math.log2(3), 1.0])
    assert [(n, v) for n, _, v in dcg_vote([["x", "y"], ["y"]])] == [("y", 2), ("x", 1)]
    plan = Plan(("Def A", "def  a"), ("high",), (PlanStep("s", ("high", "q2")),))
    assert plan.queries() == ["Def A", "high", "q2"] and plan.queries(2) == ["Def A", "high"]
    parsed = Plan.from_json_dict(
        {"definition_queries": "one", "highlevel_queries": [1, "two"], "steps": [{"queries": ["three"]}, "junk"]}
    )
    assert parsed.queries() == ["one", "two", "three"]


def test_offline_run_respects_limits_and_is_deterministic(engine: SearchEngine) -> None:
    problem = ReasoningProblem(FORMAL, INFORMAL)
    reasoner = ReasoningEngine(engine, config=ReasoningConfig(output_top_k=7))
    first, second = reasoner.run(problem), reasoner.run(problem)
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(second.to_dict(), sort_keys=True)
    assert 1 <= len(first.attempts) <= 4 and len(first.ranking) <= 7
    for attempt in first.attempts:
        assert len(attempt.queries) <= 20 and len(attempt.judged) <= 30
        for q in attempt.queries:
            assert len(q.retrieved) <= 30 and set(q.kept) <= set(q.retrieved[:20])
    top = first.names[:3]
    assert "orderOf_dvd_card" in top and "orderOf_pos" in first.names
    assert first.planner.startswith("offline-v1") and json.loads(json.dumps(first.to_dict()))["ranking"]
    informal_only = reasoner.run(ReasoningProblem(informal_statement="order of an element divides the group order"))
    assert informal_only.names[0] == "orderOf_dvd_card"


def _stub_planner(
    *, sketch: str | None = None, filter_reply: str | None = None, judge: str | None = None
) -> tuple[LLMPlanner, ScriptedLLM]:
    def reply(msgs: list[dict[str, str]]) -> str:
        user = msgs[-1]["content"]
        if user.startswith("Below is a theorem"):
            if sketch is not None:
                return sketch
            queries = [f"group order query {i}" for i in range(25)]
            return json.dumps({"definition_queries": ["orderOf"], "highlevel_queries": queries, "steps": []})
        if user.startswith("A search for the query"):
            return filter_reply if filter_reply is not None else '{"kept_results": [0, 1, 99, 1], "reasoning": "r"}'
        return judge if judge is not None else '{"judgment": "good", "reasoning": "fine"}'

    llm = ScriptedLLM(reply)
    return LLMPlanner(llm), llm


def test_stub_llm_limits(engine: SearchEngine) -> None:
    planner, llm = _stub_planner()
    trace = ReasoningEngine(engine, planner).run(ReasoningProblem(FORMAL, INFORMAL))
    attempt = trace.attempts[0]
    assert len(trace.attempts) == 1 and attempt.verdict.good and attempt.plan_source == "planner"
    assert len(attempt.queries) == 20  # 26 planned, at most 20 searched
    filter_prompts = [m[-1]["content"] for m in llm.calls if m[-1]["content"].startswith("A search for the query")]
    assert len(filter_prompts) == 20
    assert all("[19] " in p and "[20] " not in p for p in filter_prompts)  # the filter sees at most 20 docs
    assert all(len(q.kept) == 2 for q in attempt.queries)  # out-of-range and repeated indices dropped
    judge_prompt = llm.calls[-1][-1]["content"]
    assert judge_prompt.count("```lean4") == len(attempt.judged) <= 30
    assert len(trace.ranking) <= 100


def test_malformed_llm_answers_use_the_fallbacks(engine: SearchEngine) -> None:
    planner, llm = _stub_planner(sketch="no plan today", filter_reply="I keep them all!", judge="looks fine to me")
    config = ReasoningConfig(big_loop=3, output_top_k=4)
    trace = ReasoningEngine(engine, planner, config).run(ReasoningProblem(FORMAL, INFORMAL))
    assert len(trace.attempts) == 4  # the judge never parses: "bad" every time, so all 1 + big_loop attempts run
    for attempt in trace.attempts:
        assert attempt.plan_source.startswith("fallback") and not attempt.verdict.parsed
        assert attempt.verdict.judgment == "bad"
        for q in attempt.queries:
            assert not q.filter_parsed and q.kept == q.retrieved[:5]  # unparseable filter: keep the top 5
    assert len(trace.ranking) == 4
    reflect_prompts = [m[-1]["content"] for m in llm.calls if "## Previous attempt" in m[-1]["content"]]
    assert len(reflect_prompts) == 3 and "COMPLETELY NEW" in reflect_prompts[0]


def test_validation(engine: SearchEngine) -> None:
    with pytest.raises(InputError, match="formal_statement"):
        ReasoningProblem()
    with pytest.raises(InputError, match="informal_statement"):
        ReasoningProblem(informal_statement=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="big_loop"):
        ReasoningConfig(big_loop=-1)
    with pytest.raises(ConfigError, match="mode"):
        ReasoningConfig(mode="magic")
    assert ReasoningConfig.from_json(ReasoningConfig(top_k_per_query=5).to_json()).top_k_per_query == 5
    with pytest.raises(ConfigError, match="output_top_k"):
        ReasoningEngine(engine).run(ReasoningProblem("theorem x : True"), output_top_k=0)
    with pytest.raises(ConfigError, match="keep_top"):
        OfflinePlanner(engine, keep_top=0)


def test_cli_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_jsonl(_corpus(), tmp_path / "c.jsonl")
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"formal_statement": FORMAL, "NL_main_result": INFORMAL}))
    assert main(["reason", "--statement-file", str(problem), "--corpus", str(corpus), "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["ranking"]) <= 3 and out["attempts"] and out["problem"]["informal_statement"] == INFORMAL
    lean = tmp_path / "t.lean"
    lean.write_text(FORMAL)
    assert main(["reason", "--statement-file", str(lean), "--corpus", str(corpus)]) == 0
    assert "premises:" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for argv in (
        ["reason", "--statement-file", str(bad), "--corpus", str(corpus)],
        ["reason", "--statement-file", str(tmp_path / "missing.json"), "--corpus", str(corpus)],
        ["reason", "--corpus", str(corpus)],
        ["reason", "--informal", "x", "-k", "0", "--corpus", str(corpus)],
    ):
        code, out, err = run_cli(main, argv)
        assert code == 2 and not out and len(err.splitlines()) == 1, argv
        assert "Traceback" not in err and "error:" in err
    empty = tmp_path / "empty.json"
    empty.write_text('{"formal_statement": ""}')
    assert main(["reason", "--statement-file", str(empty), "--corpus", str(corpus)]) == 2
    assert "empty.json" in capsys.readouterr().err


def test_cli_eval_mpr_reasoning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_jsonl(_corpus(), tmp_path / "c.jsonl")
    bench = tmp_path / "mpr.json"
    problem = {"id": "p1", "formal_statement": FORMAL, "NL_main_result": INFORMAL}
    groups = [{"kind": "original", "docs": ["orderOf_dvd_card"]}, {"kind": "original", "docs": ["orderOf_pos"]}]
    bench.write_text(json.dumps([{**problem, "premise_group": groups}]))
    argv = ["eval", "mpr", "--reasoning", "--file", str(bench), "--corpus", str(corpus), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "reasoning" and out["n_queries"] == 1 and 1.0 <= out["mean_attempts"] <= 4.0
    assert out["metrics"]["all"]["Recall@10(group)"] == 100.0 and out["planner"].startswith("offline")
    assert main(["eval", "qr", "--reasoning", "--corpus", str(corpus)]) == 2
