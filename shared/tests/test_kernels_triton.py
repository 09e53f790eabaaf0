"""The Triton backends of `repro_core.kernels` agree with the torch backends.

On a machine without CUDA the kernels run in Triton's interpreter on CPU tensors. `TRITON_INTERPRET` must be set
before triton is first imported, so the comparisons run in one subprocess (small inputs: the interpreter is slow)
that prints its findings as JSON. On CUDA the same comparisons also run in-process (`gpu` marker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton", reason="triton is not installed (pip install 'repro-core[triton]')")

from repro_core.kernels import topk_similarity  # noqa: E402

#: Runs in a subprocess (and, on CUDA, in-process): compares backend="triton" with backend="torch".
COMPARE = r"""
import json, sys
import torch
from repro_core.kernels import METRICS, relu_nngp_ntk, topk_similarity

def compare(device):
    gen = torch.Generator().manual_seed(0)
    out = {}
    q = torch.randn(37, 40, generator=gen).to(device)
    g = torch.randn(150, 40, generator=gen).to(device)
    for metric in METRICS:
        for chunk in (None, 7, 64):
            for k in (1, 5):
                ts, ti = topk_similarity(q, g, k, metric=metric, chunk_size=chunk, backend="triton")
                rs, ri = topk_similarity(q, g, k, metric=metric, chunk_size=chunk, backend="torch")
                out[f"topk-random-{metric}-{chunk}-{k}"] = {
                    "indices_equal": bool(torch.equal(ti, ri)), "max_abs_diff": float((ts - rs).abs().max()),
                    "exact": False, "tol": 1e-5}
    base = torch.randint(-2, 3, (30, 4), generator=gen)
    g_ties = torch.cat([base, base[torch.randint(0, 30, (20,), generator=gen)]]).float().to(device)
    q_ties = torch.randint(-2, 3, (9, 4), generator=gen).float().to(device)
    for metric in METRICS:
        for chunk in (None, 7):
            ts, ti = topk_similarity(q_ties, g_ties, 6, metric=metric, chunk_size=chunk, backend="triton")
            rs, ri = topk_similarity(q_ties, g_ties, 6, metric=metric, chunk_size=chunk, backend="torch")
            # l2: the kernel's IEEE sqrt may differ by an ulp from torch's CPU sqrt; integer data keeps the ties.
            out[f"topk-ties-{metric}-{chunk}"] = {
                "indices_equal": bool(torch.equal(ti, ri)), "max_abs_diff": float((ts - rs).abs().max()),
                "exact": metric != "l2", "tol": 1e-5}
    try:
        topk_similarity(q.double(), g.double(), 3, backend="triton")
        out["topk-float64-rejected"] = {"ok": False}
    except ValueError as exc:
        out["topk-float64-rejected"] = {"ok": "float64" in str(exc)}
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x1 = torch.randn(2, 5, 6, generator=gen, dtype=dtype)
        x1[0, 2] = 0.0
        x2 = torch.randn(2, 7, 6, generator=gen, dtype=dtype)
        cases = {"pair": (x1, x2), "self": (x1, None), "eye": (torch.eye(4, dtype=dtype), None),
                 "parallel": (x1, torch.cat([x1, -x1, 2 * x1], dim=1))}
        for b_std in (0.0, 0.4):
            for name, (a, b) in cases.items():
                a = a.to(device)
                b = None if b is None else b.to(device)
                tn, tk = relu_nngp_ntk(a, b, w_std=1.3, b_std=b_std, backend="triton")
                rn, rk = relu_nngp_ntk(a, b, w_std=1.3, b_std=b_std, backend="torch")
                diff = max(float((tn - rn).abs().max()), float((tk - rk).abs().max()))
                out[f"arccos-{name}-{str(dtype)[6:]}-{b_std}"] = {
                    "max_abs_diff": diff, "tol": tol,
                    "finite": bool(torch.isfinite(tn).all() and torch.isfinite(tk).all()),
                    "dtype_ok": tn.dtype == dtype and tk.dtype == dtype}
    return out

if __name__ == "__main__":
    print(json.dumps(compare(sys.argv[1])))
"""


def _check(results: dict[str, Any]) -> None:
    bad = []
    for name, r in results.items():
        if name.startswith("topk-float64"):
            ok = r["ok"]
        elif name.startswith("topk"):
            ok = r["indices_equal"] and (r["max_abs_diff"] == 0.0 if r["exact"] else r["max_abs_diff"] <= r["tol"])
        else:
            ok = r["finite"] and r["dtype_ok"] and r["max_abs_diff"] <= r["tol"]
        if not ok:
            bad.append(f"{name}: {r}")
    assert not bad, "Triton and torch backends disagree:\n" + "\n".join(bad)


@pytest.fixture(scope="module")
def interpreted() -> dict[str, Any]:
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", COMPARE, "cpu"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_topk_triton_interpreter_matches_torch(interpreted: dict[str, Any]) -> None:
    topk = {k: v for k, v in interpreted.items() if k.startswith("topk")}
    assert len(topk) == 18 + 6 + 1
    _check(topk)


def test_arccos_triton_interpreter_matches_torch(interpreted: dict[str, Any]) -> None:
    arccos = {k: v for k, v in interpreted.items() if k.startswith("arccos")}
    assert len(arccos) == 16
    _check(arccos)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"), reason="interpreter is on here")
def test_forced_triton_on_cpu_without_interpreter_is_refused() -> None:
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        topk_similarity(torch.ones(2, 3), torch.ones(4, 3), 1, backend="triton")


@pytest.mark.gpu
def test_triton_on_cuda_matches_torch() -> None:
    namespace: dict[str, Any] = {"__name__": "compare"}
    exec(COMPARE, namespace)
    _check(namespace["compare"]("cuda"))


@pytest.mark.gpu
def test_auto_backend_on_cuda_uses_triton_results() -> None:
    gen = torch.Generator().manual_seed(1)
    q, g = torch.randn(100, 64, generator=gen).cuda(), torch.randn(5000, 64, generator=gen).cuda()
    auto_scores, auto_idx = topk_similarity(q, g, 10, metric="cosine")
    cpu_scores, cpu_idx = topk_similarity(q.cpu(), g.cpu(), 10, metric="cosine")
    assert torch.equal(auto_idx.cpu(), cpu_idx)
    torch.testing.assert_close(auto_scores.cpu(), cpu_scores, rtol=1e-5, atol=1e-5)
