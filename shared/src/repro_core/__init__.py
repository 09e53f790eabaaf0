"""repro-core: what the repro research libraries share.

Submodules (import the one you need; none imports torch or jax until it is used):

- `repro_core.seeding`: one seed for random, numpy, torch and jax; named independent streams; RNG-state guards.
- `repro_core.metrics`: ranking, retrieval, classification and regression metrics, bootstrap intervals.
- `repro_core.kernels`: streaming top-k similarity and ReLU arc-cosine (NNGP/NTK) kernels, torch and Triton.
- `repro_core.device`: device choice (`REPRO_DEVICE`), dtype policy, chunk sizes from free memory.
- `repro_core.checkpoint`: atomic checkpoints, safe loading, resume.
- `repro_core.distributed`: torchrun initialisation, rank-aware seeding, rank-0 logging and writing.
- `repro_core.progress`, `repro_core.serialization`: progress bars on stderr, JSON-ready values (library side).
- `repro_core.optional`: `require`/`has_module` for optional dependencies, naming the extra that installs them.
- `repro_core.cli`: the shared command-line plumbing (errors -> exit 2, `--json`, progress bars, logging).
- `repro_core.report`: result records, JSON/Markdown writers and figures for reproductions.
- `repro_core.testing`: the CLI and reproduction conventions, as checks each package's tests call.
- `repro_core.umbrella`: the `repro` command (`repro reproduce` runs every package's quick reproduction).
"""

from repro_core.__about__ import __version__
from repro_core.errors import ConfigError, InputError, MissingExtraError, ReproError

__all__ = ["ConfigError", "InputError", "MissingExtraError", "ReproError", "__version__"]
