"""Pin torch to one CPU thread for this package's tests and restore it afterwards.

The models here are small: on a busy 2-core machine two threads are several times slower per step than one
(spec 6.4), and one thread also keeps float results identical from run to run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
