"""Hierarchical informalisation: Kahn levels and cycles, lenient JSON, budgets, offline text, a scripted LLM run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from premise_search.cli import main
from premise_search.corpus import Declaration, read_jsonl, write_jsonl
from premise_search.informalize import (
    SYSTEM_PROMPT,
    InformalizeConfig,
    Informalizer,
    OfflineInformalizer,
    build_prompt,
    dependency_levels,
    extract_json,
    infer_dependencies,
    is_internal,
    template_for,
    truncate_tokens,
)
from premise_search.llm import ScriptedLLM
from repro_core.errors import ConfigError
from repro_core.testing import run_cli


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline defaults are under test: a developer's PREMISE_SEARCH_LLM_* variables must not leak in."""
    for suffix in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT"):
        monkeypatch.delenv(f"PREMISE_SEARCH_LLM_{suffix}", raising=False)


def test_levels_of_small_graphs() -> None:
    chain = dependency_levels(["c", "b", "a"], {"c": ["b"], "b": ["a"]})
    assert chain.level == {"c": 2, "b": 1, "a": 0} and not chain.cyclic and chain.max_finite == 2
    diamond = dependency_levels(list("abcd"), {"d": ["b", "c"], "b": ["a"], "c": ["a", "b"]})
    assert diamond.level == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert diamond.batches() == [["a"], ["b"], ["c"], ["d"]]
    # a 3-cycle (and a node depending on it) go after the finite levels; unknown deps and self-loops are ignored
    graph = {"x": ["y"], "y": ["z"], "z": ["x"], "w": ["x", "leaf"], "leaf": ["leaf", "not-a-node"], "m": ["leaf"]}
    cyc = dependency_levels(["x", "y", "z", "w", "leaf", "m"], graph)
    assert cyc.cyclic == {"x", "y", "z", "w"} and cyc.max_finite == 1
    assert cyc.level["leaf"] == 0 and cyc.level["m"] == 1
    assert all(cyc.level[n] == 2 for n in "xyzw")
    assert cyc.batches(["m", "leaf", "z", "w", "x", "y"]) == [["leaf"], ["m"], ["z", "w", "x", "y"]]
    assert dependency_levels([], {}).max_finite == -1


@settings(max_examples=60)
@given(
    n=st.integers(1, 14),
    edges=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13)), max_size=40),
)
def test_every_dependency_comes_first_unless_in_a_cycle(n: int, edges: list[tuple[int, int]]) -> None:
    nodes = [f"n{i}" for i in range(n)]
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        if a < n and b < n:
            graph.setdefault(nodes[a], []).append(nodes[b])
    levels = dependency_levels(nodes, graph)
    for node, deps in graph.items():
        for dep in deps:
            if dep == node:
                continue
            if node not in levels.cyclic:
                assert levels.level[dep] < levels.level[node] and dep not in levels.cyclic
        if node not in levels.cyclic:  # level(v) = 1 + max level(deps), leaves 0
            real = [levels.level[d] for d in deps if d != node]
            assert levels.level[node] == (1 + max(real) if real else 0)
    assert all(levels.level[c] == levels.max_finite + 1 for c in levels.cyclic)
    # a node is left over only if some dependency chain from it reaches a cycle
    assert all(any(d in levels.cyclic for d in graph.get(c, ()) if d != c) for c in levels.cyclic)


def test_internal_names_and_templates() -> None:
    for name in ("foo._proof_1", "foo.match_2", "foo.eq_1", "_private.Mathlib.Foo.0.bar", "a..b"):
        assert is_internal(name), name
    for name in ("Nat.add_comm", "eq_comm", "Foo.proof_irrel", "match_pattern"):
        assert not is_internal(name), name
    assert [template_for(k) for k in ("theorem", "def", "abbrev", "instance", "structure", "constructor")] == [
        "theorem",
        "definition",
        "definition",
        "instance",
        "technical",
        "technical",
    ]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"informal_name": "A", "informal_description": "B"}', {"informal_name": "A", "informal_description": "B"}),
        ('```json\n{"informal_name": "A"}\n```', {"informal_name": "A"}),
        ('Here it is:\n{"informal_name": "A {x}", "n": 1}\nHope this helps!', {"informal_name": "A {x}", "n": 1}),
        ("{'informal_name': 'A', 'ok': True}", {"informal_name": "A", "ok": True}),
        ('{"informal_name": "A", "list": [1, 2,],}', {"informal_name": "A", "list": [1, 2]}),
        ('<think>maybe {"no": 1}</think> {"informal_name": "B"}', {"informal_name": "B"}),
        ('{"a": "line\nbreak", "b": null}', {"a": "line\nbreak", "b": None}),
        ('text {not json} then {"k": "v"}', {"k": "v"}),
        ("no object here", None),
        ("[1, 2]", None),
        ('{"unterminated": "x"', None),
    ],
)
def test_extract_json(reply: str, expected: dict[str, object] | None) -> None:
    assert extract_json(reply) == expected


def _decl(name: str, kind: str = "theorem", **kw: object) -> Declaration:
    return Declaration(name, kind, "Mathlib.Test", kw.pop("signature", f"{kind} {name} : True"), **kw)  # type: ignore[arg-type]


def test_prompt_contents_and_budgets() -> None:
    deps = [_decl(f"Dep{i}", "def", informal_name=f"dep {i}", informal_description=f"meaning {i}") for i in range(120)]
    decl = _decl("Main", "def", value="x" * 100_000, docstring="d" * 10_000)
    user = build_prompt(decl, 3, deps)[1]["content"]
    assert build_prompt(decl, 3, deps)[0]["content"] == SYSTEM_PROMPT
    assert "Entry level: 3" in user and "Kind: def" in user and "## Formal definition" in user
    assert "`Dep0` (def): dep 0: meaning 0" in user and "`Dep95`" in user and "`Dep96`" not in user  # cap 96
    assert "x" * int(6000 * 3.8) not in user and "x" * (int(6000 * 3.8) - 1) + "…" in user  # value budget
    assert "d" * (int(800 * 3.8) - 1) + "…" in user
    theorem = build_prompt(_decl("T", value="proof term"), 0, [])[1]["content"]
    assert "proof term" not in theorem and "Translate the following Lean 4 theorem" in theorem  # Props: no value
    # a small prompt budget drops dependencies first, then halves the fields
    tight = InformalizeConfig(max_prompt_tokens=1200)
    small = build_prompt(decl, 3, deps, tight)
    size = sum(len(m["content"]) for m in small)
    assert size <= 1200 * 3.8 and "`Dep0`" not in small[1]["content"]
    assert truncate_tokens("abcdef", 1, 2.0) == "a…" and truncate_tokens("ab", 1, 2.0) == "ab"
    with pytest.raises(ConfigError, match="max_dependency_items"):
        InformalizeConfig(max_dependency_items=-1)
    config = InformalizeConfig(parallelism=2)
    assert InformalizeConfig.from_json(config.to_json()) == config


def test_infer_dependencies_resolves_namespaces() -> None:
    corpus = [
        _decl("Finset.sum", "def", signature="def Finset.sum (s : Finset α) (f : α → β) : β"),
        _decl("Finset", "structure", signature="structure Finset (α : Type*)"),
        _decl("Finset.sum_comm", signature="theorem Finset.sum_comm : sum s (fun x => sum t (f x)) = 0"),
        _decl("Other", deps=("Finset", "Finset.sum_comm._proof_1", "Other")),
    ]
    deps = infer_dependencies(corpus)
    assert deps["Finset.sum"] == ("Finset",)
    assert deps["Finset.sum_comm"] == ("Finset.sum",)  # `sum` resolved inside namespace Finset
    assert deps["Other"] == ("Finset",)  # declared deps win; internal names and self-references dropped


def test_offline_informaliser_is_deterministic() -> None:
    decl = _decl(
        "Nat.Prime.dvd_mul",
        signature="theorem Nat.Prime.dvd_mul {p m n : ℕ} (pp : Nat.Prime p) : p ∣ m * n ↔ p ∣ m ∨ p ∣ n",
        docstring="Euclid's lemma. More text here. And more.",
    )
    offline = OfflineInformalizer()
    name, text = offline.informalize(decl)
    assert name == "Divides multiplication (Nat.Prime)"
    assert text.startswith("Theorem `Nat.Prime.dvd_mul` in `Mathlib.Test`")
    assert "Euclid's lemma. More text here." in text and "And more" not in text
    assert "Formally: {p m n : ℕ} (pp : Nat.Prime p) : p ∣ m * n" in text
    corpus = [decl, _decl("Nat.Prime", "def", signature="def Nat.Prime (p : ℕ) : Prop"), _decl("x._proof_1")]
    first, second = Informalizer().run(corpus), Informalizer().run(corpus)
    assert [d.to_dict() for d in first.declarations] == [d.to_dict() for d in second.declarations]
    assert [r.status for r in first.records] == ["offline", "offline", "skipped"]
    assert first.declarations[2].informal_name is None
    assert "It uses: Prime (Nat)." in (first.declarations[0].informal_description or "")


def test_scripted_llm_run_goes_bottom_up() -> None:
    corpus = [
        _decl("C", signature="theorem C : B ∧ A"),
        _decl("B", "def", signature="def B : Prop := A"),
        _decl("A", "def", signature="def A : Prop"),
        _decl("D", signature="theorem D : A", informal_name="kept", informal_description="already written"),
        _decl("Bad", signature="theorem Bad : C"),
    ]

    def reply(msgs: list[dict[str, str]]) -> str:
        user = msgs[-1]["content"]
        name = user.split("## Formal name\n\n", 1)[1].split("\n", 1)[0]
        if name == "Bad":
            return "I cannot do that."
        return f'Sure:\n```json\n{{"informal_name": "name of {name}", "informal_description": "about {name}"}}\n```'

    llm = ScriptedLLM(reply)
    result = Informalizer(llm, InformalizeConfig(parallelism=2)).run(corpus)
    order = [m[-1]["content"].split("## Formal name\n\n", 1)[1].split("\n", 1)[0] for m in llm.calls]
    assert order.index("A") < order.index("B") < order.index("C") < order.index("Bad") and "D" not in order
    c_prompt = llm.calls[order.index("C")][-1]["content"]
    assert "`B` (def): name of B: about B" in c_prompt and "`A` (def): name of A: about A" in c_prompt
    assert "Entry level: 2" in c_prompt
    by_name = {d.name: d for d in result.declarations}
    assert by_name["C"].informal_description == "about C" and by_name["D"].informal_description == "already written"
    assert by_name["Bad"].informal_description is None
    assert result.counts() == {"failed": 1, "kept": 1, "llm": 3}
    assert result.summary()["n_levels"] == 4
    rescued = Informalizer(ScriptedLLM(reply), fallback_offline=True).run(corpus)
    assert rescued.records[-1].status == "offline" and rescued.records[-1].error == "no JSON object in the reply"


def test_cli_informalize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_jsonl([_decl("A", "def"), _decl("B", signature="theorem B : A")], tmp_path / "c.jsonl")
    out = tmp_path / "out.jsonl.gz"
    assert main(["informalize", "--corpus", str(corpus), "--out", str(out), "--style", "lsv2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == {"offline": 2} and summary["n_levels"] == 2
    rows = read_jsonl(out)
    assert rows[1].informal_name == "B" and "It uses: A." in (rows[1].informal_description or "")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x", "kind": "theorem"}\nnot json\n')
    assert main(["informalize", "--corpus", str(bad), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert run_cli(main, ["informalize", "--corpus", str(tmp_path / "missing.jsonl"), "--out", str(out)]).code == 2
    assert main(["informalize", "--corpus", str(corpus), "--out", str(out), "--llm-model", "m"]) == 2
    assert "no base URL" in capsys.readouterr().err
