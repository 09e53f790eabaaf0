"""The authors' released data, one command away: `truth-crowd data fetch` and where every loader finds the files.

The released CSVs cannot ship in a wheel (no licence, "for research purposes only"), so `fetch_released_data`
downloads them from the authors' public repository at the pinned commit with `pooch` (each file to a temporary name
beside its target, checked against its sha256, then moved into place: a failed or corrupted download leaves no file
behind) into the user's data directory (`platformdirs`; `$TRUTH_CROWD_DATA_DIR` overrides it). Nothing here runs at
import time.

`find_data_file("IPM2021/multidimensional.csv")` is the one lookup every loader and the reproduction use:
`$REPRO_SHARED_DATA/truth-crowd/...` first (the project's data folder), then the fetched copy, then
`../shared/data/truth-crowd/...` beside a checkout.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from repro_core.errors import ReproError

__all__ = [
    "CITATION",
    "DATA_DIR_ENV",
    "HOW_TO_GET_DATA",
    "RELEASED_FILES",
    "RELEASE_COMMIT",
    "RELEASE_REPOSITORY",
    "RELEASE_URL",
    "DataFetchError",
    "FetchedFile",
    "ReleasedFile",
    "data_dir",
    "fetch_released_data",
    "find_data_file",
]

logger = logging.getLogger(__name__)

#: The authors' repository and the commit whose files the paper's numbers come from (spec 3.1: later copies of the
#: IPM2021 file are stripped down).
RELEASE_REPOSITORY = "https://github.com/KevinRoitero/crowdsourcingTruthfulness"
RELEASE_COMMIT = "7fbe9e7"
RELEASE_URL = f"https://raw.githubusercontent.com/KevinRoitero/crowdsourcingTruthfulness/{RELEASE_COMMIT}/"
#: Environment variable naming the folder `fetch_released_data` writes to and loaders read from (default: the user
#: data dir).
DATA_DIR_ENV = "TRUTH_CROWD_DATA_DIR"


@dataclass(frozen=True)
class ReleasedFile:
    """One file of the release: where it lives locally (`path`, relative to the data folder), its path in the
    authors' repository (`remote`), its sha256 and size in bytes (measured on the 7fbe9e7 copy)."""

    path: str
    remote: str
    sha256: str
    size: int


#: Every file `fetch_released_data` downloads. The hashes were computed on the project's copy of commit 7fbe9e7. The
#: SIGIR 2020 three- and hundred-level files (`S3.csv`, `S100.csv`) are not pinned: no verified copy was at hand
#: to hash.
RELEASED_FILES: tuple[ReleasedFile, ...] = (
    ReleasedFile(
        "IPM2021/multidimensional.csv",
        "IPM2021/multidimensional.csv",
        "9d35af0c6252aa02ecf8a8c421bc10e4d316973cda0e086b2aea4312c3139ce6",
        3427048,
    ),
    ReleasedFile(
        "IPM2021/parameters.md",
        "IPM2021/parameters.md",
        "3d70939dd870b7bf23e00d5937bedeadcbe05e40febda390f2ff3351e7892f95",
        2060,
    ),
    ReleasedFile(
        "IPM2021/README.md",
        "IPM2021/README.md",
        "24992e7b056520326b64a531f9ca2bf0aa11b25992d45393edb9783aa1873340",
        3132,
    ),
    ReleasedFile(
        "SIGIR2020/Politifact.csv",
        "SIGIR2020/Politifact.csv",
        "db3d11a0518ada68cf1849e4efe57fb08051d43fad440bb3e2b201926c2d303c",
        19120,
    ),
    ReleasedFile(
        "SIGIR2020/ABC.csv",
        "SIGIR2020/ABC.csv",
        "7749ff967fe53db211160207dcf546616a39e69db83035b596caa45b948737bd",
        15714,
    ),
    ReleasedFile(
        "SIGIR2020/README.md",
        "SIGIR2020/README.md",
        "9364a44af5469d93a14f89c0a87f261cc623fd385b564619ea349ef7a0a9251b",
        4344,
    ),
    ReleasedFile(
        "SIGIR2020/crowd/S6.csv",
        "SIGIR2020/crowdsourced-data/S6.csv",
        "4c6db8dd43a525d36b803e0da7a00485acaff33cdf0eb9b932460357f855dd51",
        1169084,
    ),
)

#: How a user gets the real data, said once (every needs-data row and loader error points here; re-exported as
#: `truth_crowd.reproduction.HOW_TO_GET_DATA`).
HOW_TO_GET_DATA = (
    "run `truth-crowd data fetch` (downloads the authors' release, commit 7fbe9e7, sha256-checked, into the user "
    "data directory), or set REPRO_SHARED_DATA to a folder holding truth-crowd/IPM2021/... and "
    "truth-crowd/SIGIR2020/..."
)

#: What to cite when using the data (the upstream README's request).
CITATION = (
    "Soprano, Roitero, La Barbera, Ceolin, Spina, Mizzaro, Demartini. The Many Dimensions of Truthfulness: "
    "Crowdsourcing Misinformation Assessments on a Multidimensional Scale. Information Processing & Management "
    "58(6), 102710, 2021. doi:10.1016/j.ipm.2021.102710\n"
    "Roitero, Soprano, Fan, Spina, Mizzaro, Demartini. Can The Crowd Identify Misinformation Objectively? The "
    "Effects of Judgment Scale and Assessor's Background. SIGIR 2020. doi:10.1145/3397271.3401112\n"
    f"Data: {RELEASE_REPOSITORY} (commit {RELEASE_COMMIT}), for research purposes only."
)


class DataFetchError(ReproError):
    """A download that failed (server unreachable, HTTP error) or gave a file with the wrong sha256."""


@dataclass(frozen=True)
class FetchedFile:
    """A file `fetch_released_data` checked: its local path, sha256 and whether it was downloaded now (False: it
    was already there)."""

    path: Path
    sha256: str
    downloaded: bool


def data_dir() -> Path:
    """Where `fetch_released_data` writes and loaders look: `$TRUTH_CROWD_DATA_DIR`, else the user data dir
    (`platformdirs`)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_path("truth-crowd", appauthor=False))


def _checkout_data() -> list[Path]:
    """`shared/data/truth-crowd` folders beside a checkout, searched upwards from this file and the working dir."""
    found = []
    for origin in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in [origin, *origin.parents]:
            candidate = parent / "shared" / "data" / "truth-crowd"
            if candidate.is_dir():
                found.append(candidate)
                break
    return found


def find_data_file(relative: str | PathLike[str]) -> Path | None:
    """The released file `relative` (e.g. `"IPM2021/multidimensional.csv"`), or None when it is nowhere.

    Looked up in `$REPRO_SHARED_DATA/truth-crowd/`, then the fetched copy (`data_dir()`), then
    `shared/data/truth-crowd/` beside a checkout.
    """
    folders: list[Path] = []
    shared = os.environ.get("REPRO_SHARED_DATA")
    if shared:
        folders.append(Path(shared) / "truth-crowd")
    folders.append(data_dir())
    if not shared:
        folders += _checkout_data()
    for folder in folders:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_released_data(
    dest: str | PathLike[str] | None = None,
    *,
    base_url: str = RELEASE_URL,
    files: Sequence[ReleasedFile] = RELEASED_FILES,
    timeout: float = 60.0,
) -> list[FetchedFile]:
    """Download the released files into `dest` (default `data_dir()`), each checked against its sha256.

    A file already there with the right hash is kept (not downloaded again); one with another hash is replaced.
    Each download goes to a temporary file beside its target and is moved into place only when its hash matches,
    so a failure leaves no partial file (and no folder this call created). Raises `DataFetchError` with one line
    naming the URL: server unreachable, HTTP error, or sha256 mismatch.
    """
    import pooch
    import requests

    folder = Path(dest) if dest is not None else data_dir()
    if folder.exists() and not folder.is_dir():
        raise DataFetchError(f"{folder}: not a folder")
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    results: list[FetchedFile] = []
    try:
        for item in files:
            target = folder / item.path
            if target.is_file() and _sha256(target) == item.sha256:
                results.append(FetchedFile(target, item.sha256, downloaded=False))
                continue
            created += [p for p in target.parents if not p.exists() and p not in created]
            url = base_url.rstrip("/") + "/" + item.remote
            logger.info("downloading %s", url)
            try:
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{item.sha256}",
                    fname=target.name,
                    path=target.parent,
                    downloader=downloader,
                    progressbar=False,
                )
            except ValueError as exc:  # pooch's hash mismatch
                raise DataFetchError(
                    f"{url}: sha256 of the download does not match the pinned {item.sha256[:12]}... "
                    f"(commit {RELEASE_COMMIT}); nothing was kept"
                ) from exc
            except requests.exceptions.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else "?"
                raise DataFetchError(f"{url}: HTTP {status}; nothing was kept") from exc
            except (requests.exceptions.RequestException, OSError) as exc:
                raise DataFetchError(
                    f"{url}: cannot download ({type(exc).__name__}: the server is unreachable or timed out); "
                    "nothing was kept"
                ) from exc
            results.append(FetchedFile(target, item.sha256, downloaded=True))
    except BaseException:
        for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        raise
    return results
