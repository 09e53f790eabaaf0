"""The declarations of an index on disk: compressed blocks of JSON lines, decoded one hit at a time.

Why: an index of all of Mathlib holds 256k declarations (about 160 MB of JSON with the informal text). Parsing
them all at start-up takes seconds and hundreds of MB, yet a search shows ten of them. So the rows are stored as
zlib-compressed blocks of `BLOCK_ROWS` JSON lines (`docs.bin`) with the byte offset of every block
(`docs.offsets.npy`, memory-mapped), and `DocStore[i]` decompresses one block and parses one line. The names go
in `names.txt` (one per line), read at open for `lookup` by name. Nothing is pickled.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from premise_search.corpus import Declaration
from repro_core.errors import InputError

__all__ = ["BLOCK_ROWS", "DocStore", "write_docstore"]

#: Rows per compressed block: small enough that one hit decompresses ~16 rows (~40 µs), large enough for zlib
#: to find the repetition between neighbouring declarations of a module (about 4x smaller than raw JSON).
BLOCK_ROWS = 16
_DATA, _OFFSETS, _NAMES = "docs.bin", "docs.offsets.npy", "names.txt"
#: Decompressed blocks kept per store: the candidates of a few recent queries.
_CACHE_BLOCKS = 512


def write_docstore(declarations: Iterable[Declaration], directory: str | Path) -> int:
    """Write `docs.bin`, `docs.offsets.npy` and `names.txt` into `directory`; returns the number of rows."""
    directory = Path(directory)
    offsets = [0]
    n = 0
    with open(directory / _DATA, "wb") as data, open(directory / _NAMES, "w", encoding="utf-8") as names:
        block: list[bytes] = []
        for decl in declarations:
            if "\n" in decl.name:
                raise InputError(f"declaration {n}: a name may not contain a newline", field="name")
            block.append(json.dumps(decl.to_dict("native"), ensure_ascii=False, sort_keys=True).encode("utf-8"))
            names.write(decl.name + "\n")
            n += 1
            if len(block) == BLOCK_ROWS:
                offsets.append(offsets[-1] + data.write(zlib.compress(b"\n".join(block), 6)))
                block = []
        if block:
            offsets.append(offsets[-1] + data.write(zlib.compress(b"\n".join(block), 6)))
    np.save(directory / _OFFSETS, np.asarray(offsets, dtype=np.int64))
    return n


class DocStore(Sequence[Declaration]):
    """Read-only, thread-safe random access to the declarations written by `write_docstore`.

    `names` (a list) and `name_index` (first row of each name) are loaded at open; rows are decoded on access.
    """

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        for part in (_DATA, _OFFSETS, _NAMES):
            if not (directory / part).is_file():
                raise InputError(f"index is missing {part}", path=directory)
        self.directory = directory
        self._offsets = np.load(directory / _OFFSETS, mmap_mode="r", allow_pickle=False)
        self._data = (
            np.memmap(directory / _DATA, dtype=np.uint8, mode="r") if (directory / _DATA).stat().st_size else b""
        )
        self.names: list[str] = (directory / _NAMES).read_text(encoding="utf-8").split("\n")[:-1]
        expected_blocks = -(-len(self.names) // BLOCK_ROWS)
        if self._offsets.shape != (expected_blocks + 1,):
            raise InputError(
                f"docs.offsets.npy has {self._offsets.shape[0]} entries for {len(self.names)} names",
                path=directory / _OFFSETS,
            )
        self.name_index: dict[str, int] = {}
        for i, name in enumerate(self.names):
            self.name_index.setdefault(name, i)
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.names)

    def _block(self, b: int) -> list[bytes]:
        with self._lock:
            hit = self._cache.get(b)
            if hit is not None:
                self._cache.move_to_end(b)
                return hit
        start, stop = int(self._offsets[b]), int(self._offsets[b + 1])
        try:
            lines = zlib.decompress(bytes(self._data[start:stop])).split(b"\n")
        except zlib.error as exc:
            raise InputError(f"corrupt block {b} ({exc})", path=self.directory / _DATA) from None
        with self._lock:
            self._cache[b] = lines
            if len(self._cache) > _CACHE_BLOCKS:
                self._cache.popitem(last=False)
        return lines

    def _row(self, i: int) -> Declaration:
        if not 0 <= i < len(self.names):
            raise IndexError(f"row {i} out of range for {len(self.names)} declarations")
        line = self._block(i // BLOCK_ROWS)[i % BLOCK_ROWS]
        return Declaration.from_dict(json.loads(line))

    @overload
    def __getitem__(self, index: int) -> Declaration: ...

    @overload
    def __getitem__(self, index: slice) -> list[Declaration]: ...

    def __getitem__(self, index: int | slice) -> Declaration | list[Declaration]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        i = int(index)
        return self._row(i + len(self) if i < 0 else i)

    def __iter__(self) -> Iterator[Declaration]:
        for b in range(len(self._offsets) - 1):
            block = zlib.decompress(bytes(self._data[int(self._offsets[b]) : int(self._offsets[b + 1])]))
            for line in block.split(b"\n"):
                yield Declaration.from_dict(json.loads(line))
