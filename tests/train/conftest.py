"""Training tests run tiny modules: one intra-op thread. Measured on the shared 2-core test
machine, a 3->2 channel conv forward+backward on [4, 3, 4, 4] took 64 ms with 2 threads and
4 ms with 1 (thread hand-off dominates tensors this small)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
