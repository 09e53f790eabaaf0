"""`truth-crowd data fetch` against a local HTTP server on 127.0.0.1 serving a copy of a (tiny) release: checksum
good, checksum bad, server down. Never touches the network beyond 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro_core.report import Verdict
from repro_core.testing import run_cli
from truth_crowd import released_data
from truth_crowd.cli import main
from truth_crowd.released_data import RELEASED_FILES, DataFetchError, ReleasedFile, find_data_file
from truth_crowd.released_data import fetch_released_data as fetch


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A release folder served on 127.0.0.1; yields (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def _serve(root: Path, remote: str, content: bytes) -> ReleasedFile:
    path = root / remote
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return ReleasedFile(remote.replace("remote-", ""), remote, hashlib.sha256(content).hexdigest(), len(content))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_released_files_are_pinned_with_sha256() -> None:
    paths = {f.path for f in RELEASED_FILES}
    assert {"IPM2021/multidimensional.csv", "SIGIR2020/crowd/S6.csv", "SIGIR2020/ABC.csv"} <= paths
    assert all(len(f.sha256) == 64 and f.size > 0 for f in RELEASED_FILES)
    assert released_data.RELEASE_URL.startswith("https://raw.githubusercontent.com/") and "7fbe9e7" in (
        released_data.RELEASE_URL
    )


def test_fetch_good_checksum_then_kept(release_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = release_server
    files = [
        _serve(root, "IPM2021/remote-a.csv", b"a,b\n1,2\n"),
        _serve(root, "SIGIR2020/crowdsourced-data/S6.csv", b"x\n"),
    ]
    dest = tmp_path / "data"
    fetched = fetch(dest, base_url=url, files=files, timeout=5)
    assert [f.downloaded for f in fetched] == [True, True]
    assert (dest / "IPM2021/a.csv").read_bytes() == b"a,b\n1,2\n"
    again = fetch(dest, base_url=url, files=files, timeout=5)
    assert [f.downloaded for f in again] == [False, False]


def test_fetch_bad_checksum_leaves_nothing(release_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = release_server
    good = _serve(root, "IPM2021/remote-a.csv", b"a,b\n1,2\n")
    tampered = ReleasedFile(good.path, good.remote, "0" * 64, good.size)
    dest = tmp_path / "data"
    with pytest.raises(DataFetchError, match="sha256 of the download does not match"):
        fetch(dest, base_url=url, files=[tampered], timeout=5)
    assert not dest.exists()  # no partial file, no folder this call created


def test_fetch_server_down_is_one_clear_error(tmp_path: Path) -> None:
    dest = tmp_path / "data"
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(DataFetchError, match="cannot download"):
        fetch(dest, base_url=url, files=RELEASED_FILES[:1], timeout=5)
    assert not dest.exists()


def test_fetch_missing_file_on_server_is_http_error(release_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = release_server
    with pytest.raises(DataFetchError, match="HTTP 404"):
        fetch(tmp_path / "data", base_url=url, files=RELEASED_FILES[:1], timeout=5)


def test_cli_data_fetch(release_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = release_server
    files = (_serve(root, "IPM2021/remote-a.csv", b"a\n1\n"),)
    monkeypatch.setattr(released_data, "RELEASED_FILES", files)
    dest = tmp_path / "data"
    code, out, err = run_cli(main, ["data", "fetch", "--dest", str(dest), "--url", url, "--json"])
    assert code == 0, err
    payload = json.loads(out)
    assert payload["files"][0]["downloaded"] and "Soprano" in payload["citation"]
    code, out, _ = run_cli(main, ["data", "fetch", "--dest", str(dest), "--url", url])
    assert code == 0 and "Please cite" in out and "present" in out
    down = f"http://127.0.0.1:{_closed_port()}/"
    code, out, err = run_cli(main, ["data", "fetch", "--dest", str(tmp_path / "other"), "--url", down])
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "cannot download" in err, err
    assert not (tmp_path / "other").exists()
    tampered = (ReleasedFile(files[0].path, files[0].remote, "f" * 64, 1),)
    monkeypatch.setattr(released_data, "RELEASED_FILES", tampered)
    code, out, err = run_cli(main, ["data", "fetch", "--dest", str(tmp_path / "bad"), "--url", url])
    assert code == 2 and "sha256" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists(), err


def test_loaders_find_the_fetched_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_SHARED_DATA", raising=False)
    monkeypatch.setenv("TRUTH_CROWD_DATA_DIR", str(tmp_path / "fetched"))
    target = tmp_path / "fetched" / "IPM2021" / "parameters.md"
    target.parent.mkdir(parents=True)
    target.write_text("x")
    assert find_data_file("IPM2021/parameters.md") == target
    shared = tmp_path / "shared"
    (shared / "truth-crowd" / "IPM2021").mkdir(parents=True)
    (shared / "truth-crowd" / "IPM2021" / "parameters.md").write_text("y")
    monkeypatch.setenv("REPRO_SHARED_DATA", str(shared))
    assert find_data_file("IPM2021/parameters.md") == shared / "truth-crowd" / "IPM2021" / "parameters.md"
    assert find_data_file("IPM2021/no-such.csv") is None


def test_missing_data_rows_say_needs_data_and_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the files, every real-data claim says `needs data` with the fetch command; none is pending."""
    from truth_crowd.reproduction import HOW_TO_GET_DATA, _real_claims

    monkeypatch.setenv("REPRO_SHARED_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("TRUTH_CROWD_DATA_DIR", str(tmp_path / "empty"))
    claims = _real_claims()
    assert claims and all(c.verdict == Verdict.NEEDS_DATA for c in claims)
    assert "truth-crowd data fetch" in HOW_TO_GET_DATA and all("truth-crowd data fetch" in c.note for c in claims)


def test_fresh_clone_after_fetch_reports_no_pending_rows(
    release_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    """`truth-crowd data fetch` against the local server serving a copy of the release (the real files, pinned
    hashes), then the reproduction's real-data rows: none pending, none needing data, the design counts reproduced."""
    import shutil

    from truth_crowd.reproduction import DESIGN_CLAIMS, _real_claims

    url, root = release_server
    for item in RELEASED_FILES:
        (root / item.remote).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / "truth-crowd" / item.path, root / item.remote)
    monkeypatch.delenv("REPRO_SHARED_DATA", raising=False)
    monkeypatch.setenv("TRUTH_CROWD_DATA_DIR", str(tmp_path / "fetched"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(main, ["data", "fetch", "--url", url, "-q"])
    assert code == 0, err
    assert find_data_file("IPM2021/multidimensional.csv") == tmp_path / "fetched" / "IPM2021" / "multidimensional.csv"
    rows = _real_claims()
    assert not [r for r in rows if r.verdict in (Verdict.PENDING, Verdict.NEEDS_DATA)]
    by_claim = {r.claim: r for r in rows}
    assert all(by_claim[claim].verdict is Verdict.REPRODUCED for claim, _, _ in DESIGN_CLAIMS)
    assert by_claim["SIGIR 2020 S6: real statements (PolitiFact + ABC)"].verdict is Verdict.REPRODUCED
