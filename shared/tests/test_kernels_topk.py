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


# --- few queries against a large gallery: the numpy-BLAS CPU path, float16 galleries, strided galleries ---------


def _tied_gallery(n_gallery: int, dim: int, seed: int) -> np.ndarray:
    """Small integers (exact in float16/32/64): with dim 3 and values in -2..2 every score value recurs many times."""
    return np.random.default_rng(seed).integers(-2, 3, (n_gallery, dim)).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_queries", [1, 3])
def test_few_queries_exact_ties_at_the_cut(metric: str, n_queries: int) -> None:
    g = _tied_gallery(5000, 3, seed=1)
    q = np.random.default_rng(2).integers(-2, 3, (n_queries, 3)).astype(np.float32)
    k = 100
    ranked, _ = brute_force(q, g, g.shape[0], metric)
    assert np.all(ranked[:, k - 1] == ranked[:, k])  # every row has a tie straddling the cut
    want_scores, want_indices = ranked[:, :k], brute_force(q, g, k, metric)[1]
    scores, indices = topk_similarity(q, g, k, metric=metric)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)
    t_scores, t_indices = topk_similarity(torch.from_numpy(q), torch.from_numpy(g), k, metric=metric)
    np.testing.assert_array_equal(t_indices.numpy(), want_indices)
    np.testing.assert_array_equal(t_scores.numpy(), want_scores)


@pytest.mark.parametrize("metric", METRICS)
def test_few_queries_k_equals_gallery(metric: str) -> None:
    g = _tied_gallery(300, 2, seed=3)
    q = np.array([[1.0, -1.0]], dtype=np.float32)
    scores, indices = topk_similarity(q, g, 300, metric=metric)
    want_scores, want_indices = brute_force(q, g, 300, metric)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)
    assert sorted(indices[0].tolist()) == list(range(300))


@pytest.mark.parametrize("n_queries", [1, 8, 32, 40])  # 40: above `_BLAS_MAX_QUERIES`, torch's product
@pytest.mark.parametrize("metric", METRICS)
def test_numpy_and_torch_inputs_agree_exactly(metric: str, n_queries: int) -> None:
    rng = np.random.default_rng(4)
    q = rng.standard_normal((n_queries, 48), dtype=np.float32)
    g = rng.standard_normal((3000, 48), dtype=np.float32)
    np_scores, np_indices = topk_similarity(q, g, 20, metric=metric)
    t_scores, t_indices = topk_similarity(torch.from_numpy(q), torch.from_numpy(g), 20, metric=metric)
    mixed_scores, mixed_indices = topk_similarity(q, torch.from_numpy(g), 20, metric=metric)
    for scores, indices in ((t_scores, t_indices), (mixed_scores, mixed_indices)):
        assert isinstance(scores, torch.Tensor) and isinstance(indices, torch.Tensor)
        np.testing.assert_array_equal(indices.numpy(), np_indices)
        np.testing.assert_array_equal(scores.numpy(), np_scores)
    # and the selection is that of the full score matrix
    _, want_indices = brute_force(q.astype(np.float64), g.astype(np.float64), 20, metric)
    np.testing.assert_array_equal(np_indices, want_indices)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("query_dtype", [np.float32, np.float64])
def test_float16_gallery_is_scored_in_the_query_dtype(
    monkeypatch: pytest.MonkeyPatch, metric: str, query_dtype: type
) -> None:
    monkeypatch.setattr(topk_module, "_WIDEN_BYTES", 7 * 4 * 8)  # 7 (float64) or 14 (float32) rows per piece
    g32 = _tied_gallery(400, 4, seed=5) / 4  # quarters: exact in float16, so widening loses nothing
    g16 = g32.astype(np.float16)
    q = (np.random.default_rng(6).integers(-4, 5, (3, 4)) / 2).astype(query_dtype)
    scores, indices = topk_similarity(q, g16, 50, metric=metric)
    assert scores.dtype == query_dtype and indices.dtype == np.int64
    want_scores, want_indices = brute_force(q, g32.astype(query_dtype), 50, metric)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)
    t_scores, t_indices = topk_similarity(torch.from_numpy(q), torch.from_numpy(g16), 50, metric=metric, chunk_size=37)
    np.testing.assert_array_equal(t_indices.numpy(), want_indices)
    np.testing.assert_array_equal(t_scores.numpy(), want_scores)
    [(_, block)] = list(similarity_blocks(q, g16, metric=metric))
    np.testing.assert_array_equal(np.take_along_axis(block, indices, axis=1), scores)


@pytest.mark.parametrize("metric", METRICS)
def test_float16_gallery_with_many_queries(monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    monkeypatch.setattr(topk_module, "_WIDEN_BYTES", 11 * 4 * 3)  # 11 rows per widened piece
    n_queries = topk_module._BLAS_MAX_QUERIES + 8  # torch's product on the widened pieces
    g32 = _tied_gallery(300, 3, seed=12)
    q = np.random.default_rng(13).integers(-2, 3, (n_queries, 3)).astype(np.float32)
    want_scores, want_indices = brute_force(q, g32, 20, metric)
    for queries, gallery in ((q, g32.astype(np.float16)), (torch.from_numpy(q), torch.from_numpy(g32).half())):
        scores, indices = topk_similarity(queries, gallery, 20, metric=metric)
        np.testing.assert_array_equal(np.asarray(indices), want_indices)
        np.testing.assert_array_equal(np.asarray(scores), want_scores)


def test_float16_random_gallery_matches_the_widened_gallery() -> None:
    rng = np.random.default_rng(7)
    g16 = rng.standard_normal((2000, 64)).astype(np.float16)
    q = rng.standard_normal((5, 64)).astype(np.float32)
    for metric in METRICS:
        scores, indices = topk_similarity(q, g16, 30, metric=metric)
        want_scores, want_indices = topk_similarity(q, g16.astype(np.float32), 30, metric=metric)
        np.testing.assert_array_equal(indices, want_indices)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-6, atol=1e-6)


def test_float16_gallery_is_not_widened_whole() -> None:
    g16 = np.ones((10, 4), dtype=np.float16)
    q, g, numpy_out, which, _ = topk_module._prepare(torch, np.ones((2, 4), np.float32), g16, "dot", "auto")
    assert numpy_out and which == "torch" and q.dtype == torch.float32
    assert g.dtype == torch.float16 and g.data_ptr() == g16.ctypes.data  # a view of the caller's array


def test_float16_queries_and_gallery_keep_float16_scores() -> None:
    g = _tied_gallery(200, 3, seed=8).astype(np.float16)
    q = np.array([[1, 0, -1]], dtype=np.float16)
    scores, indices = topk_similarity(q, g, 10, metric="dot")
    assert scores.dtype == np.float16
    want_scores, want_indices = brute_force(q.astype(np.float32), g.astype(np.float32), 10, "dot")
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores.astype(np.float32), want_scores)


@pytest.mark.parametrize("layout", ["column_slice", "fortran"])
def test_strided_numpy_gallery_is_used_without_a_copy(layout: str) -> None:
    base = np.random.default_rng(9).standard_normal((500, 24)).astype(np.float32)
    g = base[:, :16] if layout == "column_slice" else np.asfortranarray(base[:, :16])
    q = np.random.default_rng(10).standard_normal((2, 16)).astype(np.float32)
    _, wrapped, _, _, _ = topk_module._prepare(torch, q, g, "dot", "auto")
    assert wrapped.data_ptr() == g.ctypes.data and tuple(wrapped.stride()) == tuple(s // 4 for s in g.strides)
    for metric in METRICS:
        scores, indices = topk_similarity(q, g, 7, metric=metric)
        want_scores, want_indices = topk_similarity(q, np.ascontiguousarray(g), 7, metric=metric)
        np.testing.assert_array_equal(indices, want_indices)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-6, atol=1e-6)


def test_negative_strides_are_copied_not_rejected() -> None:
    g = _tied_gallery(50, 3, seed=11)[::-1]
    q = np.array([[1.0, 2.0, 0.0]], dtype=np.float32)
    scores, indices = topk_similarity(q, g, 5, metric="dot")
    want_scores, want_indices = brute_force(q, np.ascontiguousarray(g), 5, "dot")
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)


def test_inputs_that_require_grad() -> None:
    q = torch.randn(2, 8, requires_grad=True)
    g = torch.randn(40, 8, requires_grad=True)
    scores, indices = topk_similarity(q, g, 5, metric="cosine")
    assert not scores.requires_grad
    _, want_indices = topk_similarity(q.detach(), g.detach(), 5, metric="cosine")
    assert torch.equal(indices, want_indices)


@st.composite
def few_query_problems(draw: st.DrawFn) -> dict:
    """Few queries, a gallery of small integers (exact in float16) stored as float16, float32 or float64."""
    dim = draw(st.integers(1, 4))
    n_gallery = draw(st.integers(1, 300))
    values = st.integers(-2, 2)
    gallery = draw(arrays(np.int64, (n_gallery, dim), elements=values))
    queries = draw(arrays(np.int64, (draw(st.integers(1, 4)), dim), elements=values))
    return {
        "queries": queries.astype(draw(st.sampled_from([np.float32, np.float64]))),
        "gallery": gallery.astype(draw(st.sampled_from([np.float16, np.float32, np.float64]))),
        "k": draw(st.integers(1, n_gallery)),
        "metric": draw(st.sampled_from(METRICS)),
    }


@settings(max_examples=150)
@given(few_query_problems())
def test_numpy_path_equals_brute_force(problem: dict) -> None:
    q, g, k, metric = problem["queries"], problem["gallery"], problem["k"], problem["metric"]
    dtype = np.promote_types(q.dtype, g.dtype)
    scores, indices = topk_similarity(q, g, k, metric=metric)
    assert scores.dtype == dtype
    want_scores, want_indices = brute_force(q.astype(dtype), g.astype(dtype), k, metric)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("gallery_dtype", [torch.float32, torch.float16])
def test_non_cpu_helpers_run_on_the_meta_device(metric: str, gallery_dtype: torch.dtype) -> None:
    """The torch branches used off the CPU (CUDA; no GPU here): shapes and dtypes only, on the meta device."""
    g = torch.empty((70_000, 512), dtype=gallery_dtype, device="meta")  # 18 pieces of 4,096 rows
    aux = topk_module._gallery_aux(torch, g, metric, torch.float32)
    assert aux.device.type == "meta" and aux.shape == (70_000,) and aux.dtype == torch.float32
    q = torch.empty((3, 512), device="meta")
    out = torch.empty((3, 70_000), device="meta")
    q_aux = topk_module._row_aux(torch, q, metric)
    topk_module._torch_score_block(torch, q, g.float(), q_aux, aux, metric, out)
    assert out.shape == (3, 70_000)
