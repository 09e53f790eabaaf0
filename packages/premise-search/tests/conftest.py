"""Package test set-up: a socket guard proving the suite runs offline, and a small corpus.

The index cache of all of Mathlib is isolated: in the repository the root conftest sets `PREMISE_SEARCH_INDEX_DIR`
(so the package tests and the integration tests share one build per test session); run from an sdist, where that
conftest is absent, `_isolated_index_cache` below does the same, so the user's cache is never touched.

The guard (session-wide, autouse) lets sockets connect only to loopback addresses (127.0.0.0/8, ::1,
`localhost`) and Unix sockets; any other `connect`, `connect_ex`, `sendto` or name lookup raises
`NetworkBlockedError`. The HTTP server tests still work because they listen and connect on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from premise_search.corpus import Declaration

__all__ = ["SMALL_CORPUS", "NetworkBlockedError"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_index_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the Mathlib index out of the user's cache when no outer conftest has already redirected it."""
    import os

    if os.environ.get("PREMISE_SEARCH_INDEX_DIR"):
        yield
        return
    patch = pytest.MonkeyPatch()
    patch.setenv("PREMISE_SEARCH_INDEX_DIR", str(tmp_path_factory.mktemp("premise-search-index") / "mathlib"))
    yield
    patch.undo()


#: Eight declarations the retrieval, semantic, server and CLI tests search (module-level, so test modules, which
#: cannot import each other or this file under --import-mode=importlib, get it through `small_corpus`). Tests
#: rely on: the first four names in this order, Lattice's own informal text, a deprecated `Lattice.old`, and a
#: `def` with a value.
SMALL_CORPUS: tuple[Declaration, ...] = (
    Declaration(
        "orderOf_dvd_card",
        "theorem",
        "Mathlib.GroupTheory.OrderOfElement",
        "theorem orderOf_dvd_card [Fintype G] {x : G} : orderOf x ∣ Fintype.card G",
        docstring="The order of an element divides the cardinality of the group.",
    ),
    Declaration(
        "Lattice",
        "class",
        "Mathlib.Order.Lattice",
        "class Lattice (α : Type u) extends SemilatticeSup α, SemilatticeInf α",
        docstring="A lattice is a join-semilattice which is also a meet-semilattice.",
        informal_name="Lattice",
        informal_description="A partial order with binary joins and meets.",
    ),
    Declaration(
        "Nat.Prime.two_le", "theorem", "Mathlib.Data.Nat.Prime.Defs", "theorem Nat.Prime.two_le : p.Prime → 2 ≤ p"
    ),
    Declaration(
        "Finset.sum_comm",
        "theorem",
        "Mathlib.Algebra.BigOperators.Basic",
        "theorem Finset.sum_comm : ∑ x ∈ s, ∑ y ∈ t, f x y = ∑ y ∈ t, ∑ x ∈ s, f x y",
        docstring="Sums can be swapped.",
    ),
    Declaration(
        "continuous_iff_isClosed",
        "theorem",
        "Mathlib.Topology.Continuous",
        "theorem continuous_iff_isClosed : Continuous f ↔ ∀ s, IsClosed s → IsClosed (f ⁻¹' s)",
    ),
    Declaration(
        "Denumerable",
        "class",
        "Mathlib.Logic.Denumerable",
        "class Denumerable (α : Type*) extends Encodable α",
        docstring="A denumerable type is one which is (constructively) bijective with ℕ.",
    ),
    Declaration("Lattice.old", "theorem", "Mathlib.Order.Lattice", "theorem Lattice.old : True", deprecated=True),
    Declaration("Group.order", "def", "Mathlib.GroupTheory.Basic", "def Group.order (G : Type*) : ℕ", value="0"),
)


@pytest.fixture(scope="session")
def small_corpus() -> list[Declaration]:
    """`SMALL_CORPUS` as a list (declarations are frozen; do not mutate the list)."""
    return list(SMALL_CORPUS)


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address (RuntimeError, so `except OSError` cannot swallow it)."""


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost.", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    return True


def _check(address: Any, family: int) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_loopback(host):
        raise NetworkBlockedError(f"network access blocked in tests: {address!r} is not loopback")


@pytest.fixture(autouse=True, scope="session")
def _socket_guard() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    connect, connect_ex, sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        _check(address, self.family)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        _check(address, self.family)
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        _check(args[-1], self.family)
        return sendto(self, data, *args)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # an IP literal needs no DNS (connect() then decides); any other name but localhost is blocked
        if host is not None and not _is_loopback(host) and not _is_ip_literal(host):
            raise NetworkBlockedError(f"name lookup blocked in tests: {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    patch.setattr(socket.socket, "connect", guarded_connect)
    patch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    patch.setattr(socket.socket, "sendto", guarded_sendto)
    patch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    patch.setenv("HF_HUB_OFFLINE", "1")  # no model downloads either
    yield
    patch.undo()
