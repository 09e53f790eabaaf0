"""Train the MiniLM query encoder for plain English (maintainers only): `query_adapter.npy` and
`query_encoder.safetensors` in `src/premise_search/data/mathlib-minilm/`.

    python packages/premise-search/scripts/train_query_adapter.py --cache DIR [--out DIR] [--layers N] [--keep P]

Why: a query is plain mathematical English, while 73% of Mathlib's declarations are known to the semantic channel
only by an informal name and a Lean statement. The shipped document vectors stay as they are; only the query side
learns (an asymmetric encoder), so nothing of Mathlib is embedded again. Two stages, on the CPU:

1. the query adapter: a linear map from MiniLM's 384 dimensions to the stored 128 (in place of the PCA projection),
   trained from the PCA projection with a penalty `--l2` on the distance from it, `--epochs` epochs;
2. the query layers: the top `--layers` of MiniLM's six transformer layers fine-tuned through rank-`--rank` updates
   (`W + B @ A`, B starting at zero, so training starts from stage 1's encoder) together with the adapter,
   `--layer-epochs` epochs. The lower layers are frozen, so their output is computed once per query. The updates
   ship as their factors (1.3 MB), not as a second model (90 MB).

Training pairs: Mathlib's own docstrings (`training_pairs`): the first paragraph (5-50 words, backticks removed)
of each documented declaration, when it reads as plain English (`plain_english`, the rule that also decides which
queries the query encoder serves). No benchmark target and no declaration of the docstring-query check is used.
The docstring is the query. For a seeded share `--keep` of the pairs the target is the declaration's shipped
vector; for the others it is the MiniLM vector of its text **without** the docstring (informal name + Lean
statement, encoded on the CPU and projected like the shipped vectors): what an undocumented declaration, 73% of
Mathlib, looks like to the channel. Every other declaration's shipped vector is a negative: the loss is a softmax
over all of Mathlib (temperature `--temperature`). A seeded tenth of the pairs is held out; each stage keeps its
epoch with the best held-out MRR. Seeded (`repro_core.seeding` streams for the split, the kept docstrings, the
factors' start and the batches). On 2 cores: encoding the 30,317 pairs about 7 minutes (cached in `--cache`), stage
1 about 90 s per epoch, stage 2 about 8 minutes per epoch with 3 layers. `--out DIR` writes both files and records
the run in `DIR/meta.json` (`query_adapter`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.corpus import Declaration, load_default_corpus
from premise_search.embed import semantic_text
from premise_search.evaluation import docstring_pool, docstring_queries
from premise_search.minilm import MathlibVectors, MiniLMEncoder, plain_english, text_hash
from premise_search.retrieval import fill_informal
from repro_core.seeding import numpy_rng, seed_everything, torch_generator


def _encoded(cache: Path, name: str, texts: list[str], encoder: MiniLMEncoder) -> np.ndarray:
    """MiniLM vectors of `texts`, from `cache` when these exact texts were encoded before."""
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache / f"{name}-{digest}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=64)
    print(f"{name}: {len(texts)} texts encoded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    np.save(path, vectors)
    return vectors


def training_pairs(corpus: list[Declaration], check: set[int]) -> list[tuple[int, str]]:
    """(row, query): `docstring_pool` with code spans stripped, where the query reads as plain English; no
    declaration of the docstring-query check."""
    return [(row, q) for row, q in docstring_pool(corpus, strip_code=True) if row not in check and plain_english(q)]


@dataclass
class TrainingData:
    """The pairs as the training sees them."""

    texts: list[str]  # the queries (docstring paragraphs)
    queries: np.ndarray  # their MiniLM vectors [n, 384]
    targets: np.ndarray  # the corpus row each one describes [n]
    pool: np.ndarray  # every declaration's vector, hidden-docstring targets re-encoded [N, dim]
    projection: np.ndarray  # the PCA projection [384, dim], where the adapter starts


def training_data(cache: Path, keep: float, seed: int, encoder: MiniLMEncoder) -> TrainingData:
    raw = load_default_corpus()
    check = {row for row, _ in docstring_queries(raw)}
    pairs = training_pairs(raw, check)
    corpus = fill_informal(raw)
    shipped = MathlibVectors()
    rows = shipped.rows([text_hash(semantic_text(d)) for d in corpus])
    if (rows < 0).any():
        raise SystemExit(f"{int((rows < 0).sum())} declarations have no shipped vector: wrong corpus or text version")
    pool = shipped.vectors(rows)
    texts = [query for _, query in pairs]
    queries = _encoded(cache, "queries", texts, encoder)
    bare = [semantic_text(replace(corpus[row], docstring=None)) for row, _ in pairs]
    targets = np.array([row for row, _ in pairs], dtype=np.int64)
    stripped = shipped.project(_encoded(cache, "undocumented", bare, encoder))
    hide = numpy_rng(seed, "query-adapter", "keep").random(len(targets)) >= keep
    pool[targets[hide]] = stripped[hide]
    return TrainingData(texts, queries, targets, pool, shipped.projection)


@dataclass
class Fit:
    """The training loop's settings, shared by both stages."""

    pool: Any  # torch [N, dim]
    targets: Any  # torch [n]
    held: np.ndarray
    fit: np.ndarray
    temperature: float
    seed: int


def run_stage(
    name: str,
    embed: Callable[[np.ndarray], Any],
    params: list[Any],
    penalty: Callable[[], Any],
    setup: Fit,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
) -> list[dict[str, float]]:
    """Adam on the softmax loss over all of Mathlib; `params` end at the epoch with the best held-out MRR.

    `embed(rows)` gives unit query vectors in the stored coordinates for those pairs.
    """
    import torch

    def held_out_mrr() -> float:
        with torch.no_grad():
            ranks = []
            for s in range(0, len(setup.held), 256):
                idx = setup.held[s : s + 256]
                scores = embed(idx) @ setup.pool.T
                own = scores.gather(1, setup.targets[torch.from_numpy(idx), None])
                ranks.append((scores > own).sum(1) + 1)
            return float((1.0 / torch.cat(ranks).double()).mean())

    best_mrr = held_out_mrr()
    best = [p.detach().clone() for p in params]
    history = [{"epoch": 0, "held_out_mrr": best_mrr}]
    print(f"{name} epoch 0: held-out MRR {best_mrr:.4f}", file=sys.stderr)
    optimiser = torch.optim.Adam(params, lr=lr)
    generator = torch_generator(setup.seed, "query-adapter", name)
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        perm = setup.fit[torch.randperm(len(setup.fit), generator=generator).numpy()]
        total = 0.0
        for s in range(0, len(perm), batch_size):
            idx = perm[s : s + batch_size]
            logits = (embed(idx) @ setup.pool.T) / setup.temperature
            loss = torch.nn.functional.cross_entropy(logits, setup.targets[torch.from_numpy(idx)]) + penalty()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        mrr = held_out_mrr()
        history.append({"epoch": epoch, "loss": total / len(perm), "held_out_mrr": mrr})
        print(
            f"{name} epoch {epoch}: loss {total / len(perm):.4f}, held-out MRR {mrr:.4f} "
            f"({time.perf_counter() - began:.0f} s)",
            file=sys.stderr,
        )
        if mrr > best_mrr:
            best_mrr, best = mrr, [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, b in zip(params, best, strict=True):
            p.copy_(b)
    return history


#: The linear layers of a transformer layer that the query layers update.
LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


class QueryLayers:
    """MiniLM's top `layers` with low-rank updates, over the frozen lower layers' output (computed once)."""

    def __init__(self, encoder: MiniLMEncoder, texts: list[str], layers: int, rank: int, seed: int) -> None:
        import torch

        self.encoder, self.first = encoder, encoder.layers - layers
        self.frozen = self._frozen_states(texts)
        generator = torch_generator(seed, "query-adapter", "low-rank")
        self.factors: dict[str, tuple[Any, Any]] = {}
        for i in range(self.first, encoder.layers):
            for linear in LINEARS:
                prefix = f"encoder.layer.{i}.{linear}"
                out, inner = encoder._w[f"{prefix}.weight"].shape
                a = torch.randn(rank, inner, generator=generator) / inner**0.5
                self.factors[prefix] = (torch.nn.Parameter(a), torch.nn.Parameter(torch.zeros(out, rank)))

    def _frozen_states(self, texts: list[str]) -> list[Any]:
        import torch

        encodings = self.encoder._tokenizer.encode_batch(texts)
        states: list[Any] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        with torch.inference_mode():
            for s in range(0, len(order), 128):
                rows = order[s : s + 128]
                ids, mask = self.encoder.padded([torch.tensor(encodings[i].ids) for i in rows])
                x = self.encoder.embed_tokens(ids)
                for i in range(self.first):
                    x = self.encoder.layer(x, mask, i)
                for r, i in enumerate(rows):
                    states[i] = x[r, : len(encodings[i].ids)].clone()
        return states

    def parameters(self) -> list[Any]:
        return [p for pair in self.factors.values() for p in pair]

    def __call__(self, rows: np.ndarray) -> Any:
        """Sentence vectors [len(rows), 384] of those pairs' queries."""
        x, mask = self.encoder.padded([self.frozen[i] for i in rows])
        weights = dict(self.encoder._w)
        for prefix, (a, b) in self.factors.items():
            weights[f"{prefix}.weight"] = self.encoder._w[f"{prefix}.weight"] + b @ a
        for i in range(self.first, self.encoder.layers):
            x = self.encoder.layer(x, mask, i, weights)
        return self.encoder.pool(x, mask)

    def export(self) -> dict[str, np.ndarray]:
        out = {}
        for prefix, (a, b) in self.factors.items():
            out[f"{prefix}.lora_a"] = a.detach().numpy().astype(np.float32)
            out[f"{prefix}.lora_b"] = b.detach().numpy().astype(np.float32)
        return out


def train(data: TrainingData, encoder: MiniLMEncoder, args: argparse.Namespace) -> dict[str, Any]:
    """Both stages; returns the adapter, the low-rank factors (None without `--layers`) and each stage's history."""
    import torch

    seed_everything(args.seed)
    order = numpy_rng(args.seed, "query-adapter", "split").permutation(len(data.targets))
    setup = Fit(
        pool=torch.from_numpy(data.pool),
        targets=torch.from_numpy(data.targets),
        held=order[: len(order) // 10],
        fit=order[len(order) // 10 :],
        temperature=args.temperature,
        seed=args.seed,
    )
    queries, start = torch.from_numpy(data.queries), torch.from_numpy(data.projection)
    adapter = torch.nn.Parameter(start.clone())

    def adapted(vectors: Any) -> Any:
        return torch.nn.functional.normalize(vectors @ adapter, dim=1)

    history = {
        "adapter": run_stage(
            "adapter",
            lambda rows: adapted(queries[torch.from_numpy(rows)]),
            [adapter],
            lambda: args.l2 * ((adapter - start) ** 2).sum(),
            setup,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
        )
    }
    factors = None
    if args.layers:
        layers = QueryLayers(encoder, data.texts, args.layers, args.rank, args.seed)
        history["layers"] = run_stage(
            "layers",
            lambda rows: adapted(layers(rows)),
            [adapter, *layers.parameters()],
            lambda: torch.zeros(()),
            setup,
            epochs=args.layer_epochs,
            lr=args.layer_lr,
            batch_size=args.layer_batch_size,
        )
        factors = layers.export()
    return {"adapter": adapter.detach().numpy().astype(np.float32), "factors": factors, "history": history}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="directory for the encoded pairs (reused on a re-run)")
    parser.add_argument("--out", help="data directory to write the query encoder into (default: only report)")
    parser.add_argument("--epochs", type=int, default=5, help="stage 1 (adapter) epochs")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--l2", type=float, default=1e-3, help="penalty on the distance from the PCA projection")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3, help="top MiniLM layers fine-tuned in stage 2 (0: none)")
    parser.add_argument("--rank", type=int, default=16, help="rank of their updates")
    parser.add_argument("--layer-epochs", type=int, default=2)
    parser.add_argument("--layer-lr", type=float, default=1e-3)
    parser.add_argument("--layer-batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=float, default=0.5, help="share of pairs whose target keeps its docstring")
    args = parser.parse_args()
    if not 0 <= args.layers <= 6 or args.rank < 1:
        parser.error("--layers must be 0-6 and --rank at least 1")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    encoder = MiniLMEncoder()
    data = training_data(cache, args.keep, args.seed, encoder)
    print(f"{len(data.targets)} pairs, pool {data.pool.shape}", file=sys.stderr)
    result = train(data, encoder, args)
    keys = "epochs temperature l2 lr batch_size seed keep layers rank layer_epochs layer_lr layer_batch_size"
    settings = {key: getattr(args, key) for key in keys.split()}
    record = {"pairs": len(data.targets), "settings": settings, "history": result["history"]}
    print(json.dumps(record, indent=1))
    if args.out:
        import safetensors.numpy

        out = Path(args.out)
        np.save(out / "query_adapter.npy", result["adapter"])
        layers_file = out / "query_encoder.safetensors"
        if result["factors"] is None:
            layers_file.unlink(missing_ok=True)
        else:
            safetensors.numpy.save_file(result["factors"], str(layers_file))
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        meta["query_adapter"] = record
        (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
