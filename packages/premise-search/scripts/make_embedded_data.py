"""Build the data shipped inside the wheel (`src/premise_search/data/`) and the tests' subset from the project data.

    python packages/premise-search/scripts/make_embedded_data.py [--data ../shared/data/premise-search]

- `src/premise_search/data/mathlib-full.jsonl.gz`: a byte-for-byte copy of `corpus/mathlib-full.jsonl.gz`, all of
  Mathlib at commit 5352afccd686 (256,190 declarations, 10.3 MB): the default corpus.
- `src/premise_search/data/lsv2-benchmark/`: verbatim copies of MathlibQR.json, MathlibQR_shared171.json,
  MathlibMPR.json, MathlibMPR_Prop_ids.txt and the LeanSearch v2 LICENSE (Apache-2.0).
- `tests/data/mathlib-subset.jsonl.gz` (tests only, not in the wheel): every row of `corpus/mathlib-sample.jsonl`
  whose module holds a MathlibQR target or a MathlibMPR premise (the 313 "target modules"), in file order, gzip
  with mtime 0.

The static model (`static-minilm/`) is written by `distill_static_model.py`. Re-running this gives identical files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from premise_search.corpus import read_jsonl, write_jsonl

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "src" / "premise_search" / "data"
TEST_DATA = HERE.parent / "tests" / "data"
BENCHMARK_FILES = (
    "MathlibQR.json",
    "MathlibQR_shared171.json",
    "MathlibMPR.json",
    "MathlibMPR_Prop_ids.txt",
    "LICENSE",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parents[3] / "shared" / "data" / "premise-search")
    args = parser.parse_args()
    bench = args.data / "lsv2-benchmark"
    TARGET.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.data / "corpus" / "mathlib-full.jsonl.gz", TARGET / "mathlib-full.jsonl.gz")
    (TARGET / "lsv2-benchmark").mkdir(exist_ok=True)
    for name in BENCHMARK_FILES:
        shutil.copyfile(bench / name, TARGET / "lsv2-benchmark" / name)
    qr = json.loads((bench / "MathlibQR.json").read_text(encoding="utf-8"))
    mpr = json.loads((bench / "MathlibMPR.json").read_text(encoding="utf-8"))
    targets = {row["full_name"] for row in qr}
    targets |= {doc for row in mpr for group in row["premise_group"] for doc in group["docs"]}
    rows = read_jsonl(args.data / "corpus" / "mathlib-sample.jsonl")
    modules = {d.module for d in rows if d.name in targets}
    subset = [d for d in rows if d.module in modules]
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    out = write_jsonl(subset, TEST_DATA / "mathlib-subset.jsonl.gz")
    covered = len({d.name for d in subset} & targets)
    print(
        f"{out}: {len(subset)} rows from {len(modules)} modules, {out.stat().st_size} bytes; "
        f"{covered}/{len(targets)} benchmark names present"
    )


if __name__ == "__main__":
    main()
