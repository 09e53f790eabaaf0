"""A restricted unpickler for CIFAR's python pickles: an allow-list of globals and a memory budget of the file's size.

Unpickling runs whatever callables a file names, so `RestrictedUnpickler.find_class` resolves only what CIFAR's
files need and hands out capped stand-ins for them; every other global raises `InputError` naming the file before
anything is looked up:

- `numpy.core.multiarray._reconstruct` / `numpy._core.multiarray._reconstruct` (numpy < 2 / >= 2), `numpy.ndarray`
  and `numpy.dtype`: arrays are rebuilt by this module, never by numpy's `__setstate__`. A dtype must be a plain
  numeric type code (bool, integer, float, complex; byte order from its state), an array's state must hold its
  data as `bytes` of exactly `prod(shape) * itemsize` bytes, and the array is a read-only view of those bytes
  (no allocation). Object, structured and sub-array dtypes are refused.
- `_codecs.encode(text, "latin1")`, which protocol-2 pickles written by Python 3 use for `bytes`; other codecs are
  refused (a chain of `hex` encodings would double the size at every step).
- the builtin containers `dict`, `list`, `tuple`, `set`, `frozenset`, `bytes` and `bytearray`.

Allocation budget: everything these callables build (the bytes of `_codecs.encode`, `bytes(...)`, `bytearray(...)`
and the items of the containers) counts against one budget, by default the file's length, checked **before** each
call. A real CIFAR batch holds its data bytes literally, so it stays far inside the budget; a 37-byte file asking for
`bytes(10**11)`, or reusing one memoised string in a million calls, is refused with `InputError`.
"""

from __future__ import annotations

import codecs
import io
import math
import operator
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar, NoReturn

import numpy as np

from repro_core.errors import InputError

__all__ = ["RestrictedUnpickler", "restricted_load"]

_BUILTIN_CONTAINERS = frozenset({"dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray"})
#: numpy dtype kinds an array may have: bool, signed and unsigned integers, floats, complex.
_NUMERIC_KINDS = frozenset("biufc")


class _NDArrayName:
    """`numpy.ndarray` as a pickle names it: only an argument of `_reconstruct`, never called or instantiated."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NDArrayName()


class _PendingDtype:
    """A numeric dtype named by a pickle; its state may set the byte order and nothing else."""

    def __init__(self, dtype: np.dtype[Any], refuse: Callable[[str], NoReturn]) -> None:
        self.dtype = dtype
        self._refuse = refuse

    def __setstate__(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subdescr, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2 or any(v is not None for v in state[2:5]):
            self._refuse(f"refusing the numpy dtype state {state!r}: only plain numeric dtypes are allowed")
        byteorder = state[1]
        if byteorder not in ("<", ">", "|", "="):
            self._refuse(f"refusing the numpy dtype byte order {byteorder!r}")
        if byteorder in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(byteorder)


class _PendingArray:
    """An array named by a pickle: built by `__setstate__` as a read-only view of its data bytes."""

    def __init__(self, owner: RestrictedUnpickler) -> None:
        self._owner = owner
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        refuse = self._owner.refuse
        if isinstance(state, tuple) and len(state) == 5:  # (version, shape, dtype, is_fortran, rawdata)
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            refuse("refusing a numpy array state that is not (shape, dtype, is_fortran, data)")
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, _PendingDtype):
            refuse(f"refusing a numpy array whose dtype is {type(dtype).__name__}, not a numpy dtype")
        try:
            dims = tuple(operator.index(n) for n in shape)
        except TypeError:
            refuse(f"refusing a numpy array shape {shape!r}")
        if any(n < 0 for n in dims):
            refuse(f"refusing a numpy array shape {dims}")
        nbytes = math.prod(dims) * dtype.dtype.itemsize
        if nbytes > self._owner.max_bytes:
            refuse(
                f"refusing a numpy array of shape {dims} ({nbytes} bytes): larger than the file "
                f"({self._owner.max_bytes} bytes)"
            )
        if not isinstance(raw, bytes) or len(raw) != nbytes:
            got = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
            refuse(f"refusing a numpy array of shape {dims} {dtype.dtype}: its data is {got}, expected {nbytes} bytes")
        flat = np.frombuffer(raw, dtype=dtype.dtype) if nbytes else np.empty(0, dtype=dtype.dtype)
        self.array = flat.reshape(dims, order="F" if fortran else "C")


def _latin1(encoding: Any) -> bool:
    try:
        return isinstance(encoding, str) and codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        return False


def _file_size(file: Any) -> int | None:
    if isinstance(file, io.BytesIO):
        return file.getbuffer().nbytes
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return None


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy array reconstruction, `_codecs.encode` and builtin containers.

    Module docstring: allow-list and allocation budget. `path` names the file in errors; `max_bytes` is the
    budget (default: the size of `file`, which must then be a `BytesIO` or a real file). Anything else a pickle
    refers to raises `InputError` from `find_class`, so the refused object is never looked up, let alone called.
    """

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def __init__(
        self,
        file: IO[bytes],
        *,
        path: str | Path | None = None,
        encoding: str = "bytes",
        max_bytes: int | None = None,
    ) -> None:
        super().__init__(file, encoding=encoding)
        self.path = path
        if max_bytes is None:
            max_bytes = _file_size(file)
            if max_bytes is None:
                raise InputError("max_bytes: required when the file's size is unknown", path=path, field="max_bytes")
        self.max_bytes = int(max_bytes)
        self._allocated = 0

    def refuse(self, message: str) -> NoReturn:
        """Raise `InputError(message)` naming the file."""
        raise InputError(message, path=self.path)

    def _charge(self, n: int, what: str) -> None:
        """Count `n` bytes (or items) against the budget, refusing before the budget is exceeded."""
        if self._allocated + n > self.max_bytes:
            self.refuse(
                f"refusing {what}: {n} bytes would bring what this pickle builds to {self._allocated + n}, more "
                f"than the file's size ({self.max_bytes} bytes)"
            )
        self._allocated += n

    def find_class(self, module: str, name: str) -> Any:
        """A capped stand-in for the allowed global `module.name`; `InputError` for every other one."""
        if (module, name) in self._ALLOWED:
            if module == "_codecs":
                return self._encode
            if name == "ndarray":
                return _NDARRAY
            if name == "dtype":
                return self._dtype
            return self._reconstruct
        if module in ("builtins", "__builtin__") and name in _BUILTIN_CONTAINERS:
            return self._container(name)
        raise InputError(
            f"refusing to unpickle {module}.{name}: a CIFAR file holds only numpy arrays and builtin containers",
            path=self.path,
        )

    def persistent_load(self, pid: Any) -> Any:
        """Persistent references never occur in CIFAR files; refuse them."""
        raise InputError("refusing to unpickle a persistent reference", path=self.path)

    def load(self) -> Any:
        """Unpickle one object, with every array built (module docstring)."""
        return self._resolve(super().load(), {})

    # stand-ins of the allowed globals

    def _encode(self, obj: Any, encoding: Any = "utf-8", errors: str = "strict") -> bytes:
        if not isinstance(obj, str) or not _latin1(encoding):
            self.refuse(f"refusing _codecs.encode of a {type(obj).__name__} with {encoding!r}: only latin1 text")
        self._charge(len(obj), "_codecs.encode")
        return codecs.encode(obj, "latin1", errors)

    def _container(self, name: str) -> Callable[..., Any]:
        import builtins

        cls = getattr(builtins, name)

        def build(*args: Any) -> Any:
            size = 0
            if args:
                try:
                    size = operator.index(args[0])  # bytes(n), bytearray(n): n zero bytes
                except TypeError:
                    size = len(args[0]) if hasattr(args[0], "__len__") else 0
                if len(args) > 1 and not _latin1(args[1]):
                    self.refuse(f"refusing {name}(..., {args[1]!r}): only latin1 text")
            self._charge(max(int(size), 0), f"{name}() of size {size}")
            return cls(*args)

        return build

    def _dtype(self, obj: Any, align: Any = False, copy: Any = False) -> _PendingDtype:
        code = obj.decode("ascii", "replace") if isinstance(obj, bytes) else obj
        if not isinstance(code, str) or len(code) > 8:
            self.refuse(f"refusing numpy.dtype({obj!r}): only plain numeric type codes")
        try:
            dtype = np.dtype(code)
        except TypeError:
            self.refuse(f"refusing numpy.dtype({obj!r}): not a numpy type code")
        if dtype.kind not in _NUMERIC_KINDS or dtype.names is not None or dtype.subdtype is not None:
            self.refuse(f"refusing numpy.dtype({obj!r}): only bool, integer, float and complex arrays")
        return _PendingDtype(dtype, self.refuse)

    def _reconstruct(self, subtype: Any, shape: Any = (0,), dtype: Any = b"b") -> _PendingArray:
        if subtype is not _NDARRAY:
            self.refuse(f"refusing numpy _reconstruct of {subtype!r}: only numpy.ndarray")
        return _PendingArray(self)

    def _resolve(self, obj: Any, seen: dict[int, Any]) -> Any:
        """`obj` with every pending array and dtype replaced by the numpy object (containers walked once)."""
        if isinstance(obj, _PendingArray):
            if obj.array is None:
                self.refuse("refusing a numpy array without its state")
            return obj.array
        if isinstance(obj, _PendingDtype):
            return obj.dtype
        if obj is _NDARRAY:
            self.refuse("refusing numpy.ndarray outside an array")
        if not isinstance(obj, dict | list | tuple | set | frozenset):
            return obj
        if id(obj) in seen:
            return seen[id(obj)]
        if isinstance(obj, list):  # in place, so shared and self-referencing lists stay so
            seen[id(obj)] = obj
            obj[:] = [self._resolve(v, seen) for v in obj]
            return obj
        if isinstance(obj, dict):
            seen[id(obj)] = obj
            items = [(self._resolve(k, seen), self._resolve(v, seen)) for k, v in obj.items()]
            obj.clear()
            obj.update(items)
            return obj
        out = type(obj)(self._resolve(v, seen) for v in obj)
        seen[id(obj)] = out
        return out


def restricted_load(path: str | Path, *, max_bytes: int | None = None) -> Any:
    """Unpickle `path` with `RestrictedUnpickler` (bytes keys as in the original Python 2 files).

    `max_bytes`: the allocation budget (default: the file's length).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    budget = len(raw) if max_bytes is None else max_bytes
    try:
        return RestrictedUnpickler(io.BytesIO(raw), path=path, max_bytes=budget).load()
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt pickles raise many different types
        raise InputError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from None
