import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: these tensors are too small to split, and on a shared
    machine a descheduled second OpenMP thread stalls every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
