"""Tests of `repro_core.kernels.topk_similarity` (torch backend) against an independent numpy brute force."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

torch = pytest.importorskip("torch")

from repro_core.kernels import METRICS, similarity_blocks, topk_similarity  # noqa: E402
from repro_core.kernels import topk as topk_module  # noqa: E402


def _sqrt(x: np.ndarray) -> np.ndarray:
    """torch's CPU sqrt, which is not always correctly rounded (numpy's is): the same float values as the code
    under test, so that ties are the same ties. What is tested is the selection and ordering, not sqrt."""
    return torch.sqrt(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def brute_force(queries: np.ndarray, gallery: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Full score matrix + lexicographic sort by (score best first, index ascending); the documented formulas."""
    dot = queries @ gallery.T
    if metric == "dot":
        scores = dot
    elif metric == "cosine":

        def inv_norm(x: np.ndarray) -> np.ndarray:
            n = _sqrt((x * x).sum(axis=1))
            safe = np.where(n > 0, n, 1)
            return np.where(n > 0, 1 / safe, 0).astype(x.dtype)

        scores = (dot * inv_norm(queries)[:, None]) * inv_norm(gallery)[None, :]
    else:
        sq_q, sq_g = (queries * queries).sum(axis=1), (gallery * gallery).sum(axis=1)
        scores = _sqrt(np.maximum(((-2 * dot) + sq_g[None, :]) + sq_q[:, None], 0))
    key = scores if metric == "l2" else -scores
    idx = np.arange(gallery.shape[0])
    order = np.stack([np.lexsort((idx, row))[:k] for row in key])
    return np.take_along_axis(scores, order, axis=1), order


@st.composite
def tie_heavy_problems(draw: st.DrawFn) -> dict:
    """Small integer-valued data (exact in float32/64) with duplicated gallery rows, so ties are everywhere."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    dim = draw(st.integers(1, 5))
    spread = draw(st.integers(1, 3))
    values = st.integers(-spread, spread)
    base = draw(arrays(np.int64, (draw(st.integers(1, 20)), dim), elements=values))
    dups = draw(st.lists(st.integers(0, base.shape[0] - 1), max_size=15))
    gallery = np.concatenate([base, base[dups]])
    gallery = gallery[draw(st.permutations(range(gallery.shape[0])))]
    queries = draw(arrays(np.int64, (draw(st.integers(1, 6)), dim), elements=values))
    n_gallery = gallery.shape[0]
    chunk = draw(
        st.one_of(
            st.just(1),
            st.integers(1, n_gallery).map(lambda c: c | 1),  # odd
            st.integers(n_gallery, n_gallery + 5),  # larger than the gallery
            st.none(),
        )
    )
    return {
        "queries": queries.astype(dtype),
        "gallery": gallery.astype(dtype),
        "k": draw(st.integers(1, n_gallery)),
        "chunk": chunk,
        "metric": draw(st.sampled_from(METRICS)),
    }


@settings(max_examples=200)
@given(tie_heavy_problems())
def test_equals_brute_force_with_ties(problem: dict) -> None:
    q, g, k, metric = problem["queries"], problem["gallery"], problem["k"], problem["metric"]
    scores, indices = topk_similarity(
        torch.from_numpy(q), torch.from_numpy(g), k, metric=metric, chunk_size=problem["chunk"], backend="torch"
    )
    want_scores, want_indices = brute_force(q, g, k, metric)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_array_equal(scores.numpy(), want_scores)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("chunk", [None, 1, 13, 64, 500])
def test_random_floats_match_full_matrix(metric: str, chunk: int | None) -> None:
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(23, 17, generator=gen, dtype=torch.float64)
    g = torch.randn(311, 17, generator=gen, dtype=torch.float64)
    scores, indices = topk_similarity(q, g, 9, metric=metric, chunk_size=chunk, backend="torch")
    if metric == "dot":
        full = q @ g.T
    elif metric == "cosine":
        full = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(g, dim=1).T
    else:
        full = torch.cdist(q, g)
    want_scores, want_indices = torch.topk(full, 9, dim=1, largest=metric != "l2")
    torch.testing.assert_close(indices, want_indices, rtol=0, atol=0)
    torch.testing.assert_close(scores, want_scores, rtol=1e-10, atol=1e-10)
    assert scores.dtype == torch.float64 and indices.dtype == torch.int64


@pytest.mark.parametrize("metric", METRICS)
def test_similarity_blocks_give_the_scores_topk_selects_from(metric: str) -> None:
    gen = torch.Generator().manual_seed(5)
    q = torch.randint(-2, 3, (7, 5), generator=gen).float()  # small integers: many exact ties
    g = torch.randint(-2, 3, (60, 5), generator=gen).float()
    blocks = list(similarity_blocks(q, g, metric=metric, query_block=3))
    assert [start for start, _ in blocks] == [0, 3, 6]
    scores = torch.cat([block for _, block in blocks])
    assert scores.shape == (7, 60) and scores.dtype == torch.float32
    top_scores, top_indices = topk_similarity(q, g, 60, metric=metric, chunk_size=13)
    torch.testing.assert_close(scores.gather(1, top_indices), top_scores, rtol=0, atol=0)
    [(start, whole)] = list(similarity_blocks(q.numpy(), g.numpy(), metric=metric))
    assert start == 0 and isinstance(whole, np.ndarray)
    np.testing.assert_array_equal(whole, scores.numpy())
    with pytest.raises(ValueError, match="metric"):
        next(similarity_blocks(q, g, metric="manhattan"))
    with pytest.raises(ValueError, match="query_block"):
        next(similarity_blocks(q, g, query_block=0))


def test_l2_is_ascending_distance() -> None:
    gen = torch.Generator().manual_seed(4)
    q, g = torch.randn(5, 8, generator=gen), torch.randn(40, 8, generator=gen)
    scores, indices = topk_similarity(q, g, 6, metric="l2", chunk_size=7)
    assert torch.all(scores[:, 1:] >= scores[:, :-1])
    torch.testing.assert_close(scores, torch.cdist(q, g).gather(1, indices), rtol=1e-4, atol=1e-4)


def test_k_equals_gallery_gives_a_permutation() -> None:
    g = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    scores, indices = topk_similarity(torch.tensor([[1.0, 0.0]]), g, 4, metric="dot", chunk_size=3)
    assert indices.tolist() == [[0, 1, 3, 2]]
    assert scores.tolist() == [[1.0, 1.0, 1.0, 0.0]]


def test_zero_vectors_have_cosine_zero() -> None:
    g = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    scores, indices = topk_similarity(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), g, 3, metric="cosine")
    assert indices.tolist() == [[2, 0, 1], [0, 1, 2]]
    assert scores.tolist() == [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]


def test_numpy_in_numpy_out_and_integer_inputs() -> None:
    q = np.array([[1, 2], [3, 1]])
    g = np.array([[1, 0], [0, 1], [1, 1]])
    scores, indices = topk_similarity(q, g, 2, metric="dot")
    assert isinstance(scores, np.ndarray) and isinstance(indices, np.ndarray)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert indices.tolist() == [[2, 1], [2, 0]] and scores.tolist() == [[3.0, 2.0], [4.0, 3.0]]
    mixed_scores, _ = topk_similarity(torch.from_numpy(q).float(), g, 2, metric="dot")
    assert isinstance(mixed_scores, torch.Tensor)


def test_empty_queries() -> None:
    scores, indices = topk_similarity(torch.zeros(0, 3), torch.ones(5, 3), 2)
    assert tuple(scores.shape) == (0, 2) and tuple(indices.shape) == (0, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 6}, "k: 6 is larger than the gallery"),
        ({"k": 0}, "k: must be >= 1"),
        ({"k": 2.0}, "k: expected an integer"),
        ({"metric": "euclid"}, "metric"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"backend": "cuda"}, "backend"),
        ({"queries": torch.ones(3)}, "queries: expected a 2-D"),
        ({"gallery": torch.ones(2, 5, 4)}, "gallery: expected a 2-D"),
        ({"gallery": torch.ones(5, 3)}, "gallery: dim 3 does not match"),
        ({"queries": [[1.0, 2.0, 3.0, 4.0]]}, "queries: expected a torch.Tensor"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"queries": torch.ones(2, 4), "gallery": torch.ones(5, 4), "k": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        topk_similarity(**args)


def test_never_scores_more_than_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    widths: list[tuple[int, int]] = []
    real = topk_module._torch_score_block

    def recording(torch_mod, q, g, q_aux, g_aux, metric, out):  # type: ignore[no-untyped-def]
        widths.append(tuple(out.shape))
        real(torch_mod, q, g, q_aux, g_aux, metric, out)

    monkeypatch.setattr(topk_module, "_torch_score_block", recording)
    topk_similarity(torch.randn(4, 3), torch.randn(100, 3), 5, chunk_size=30)
    assert widths == [(4, 30), (4, 30), (4, 30), (4, 10)]


@pytest.mark.parametrize("metric", METRICS)
def test_automatic_plan_blocks_queries_when_budget_is_small(monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    monkeypatch.setitem(topk_module._BLOCK_BUDGET_BYTES, "cpu", 4096)  # forces 1 query x 1024 gallery rows per block
    gen = torch.Generator().manual_seed(5)
    q = torch.randint(-2, 3, (50, 3), generator=gen).double()
    g = torch.randint(-2, 3, (2000, 3), generator=gen).double()
    scores, indices = topk_similarity(q, g, 7, metric=metric)
    want_scores, want_indices = brute_force(q.numpy(), g.numpy(), 7, metric)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_array_equal(scores.numpy(), want_scores)


@pytest.mark.parametrize(
    ("n_queries", "n_gallery", "itemsize"), [(1000, 200_000, 4), (1, 10, 8), (100_000, 50_000, 4), (7, 3, 2)]
)
def test_plan_blocks_respects_the_budget(n_queries: int, n_gallery: int, itemsize: int) -> None:
    query_block, chunk = topk_module._plan_blocks(n_queries, n_gallery, itemsize, "cpu")
    assert 1 <= query_block <= n_queries and 1 <= chunk <= n_gallery
    assert query_block * chunk * itemsize <= topk_module._BLOCK_BUDGET_BYTES["cpu"]
    if query_block < n_queries:
        assert chunk >= min(topk_module._MIN_CHUNK, n_gallery)


def test_import_without_torch_and_missing_extra_error() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import repro_core.kernels as K\n"
        "from repro_core.errors import MissingExtraError\n"
        "for call in (lambda: K.topk_similarity([[1.0]], [[1.0]], 1), lambda: K.relu_nngp_ntk([[1.0]])):\n"
        "    try:\n"
        "        call()\n"
        "    except MissingExtraError as exc:\n"
        "        assert 'torch' in str(exc), exc\n"
        "    else:\n"
        "        raise SystemExit('no MissingExtraError')\n"
        "assert abs(K.kappa0(0.0) - 0.5) < 1e-15\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
