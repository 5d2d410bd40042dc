"""Test-session setup. Environment first: both variables are read once per process.

- STYLEGAN_FAST_POISON_OUTPUTS=1: kernels fill outputs with NaN before writing them, so parity
  tests catch any element a kernel leaves unwritten.
- TRITON_INTERPRET=1 (unless set already): Triton kernels run on CPU tensors. Set
  TRITON_INTERPRET=0 to run the Triton tests on a GPU instead.
"""

import os

os.environ.setdefault("STYLEGAN_FAST_POISON_OUTPUTS", "1")
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_runtest_setup(item):
    # Decided when the test runs, not at collection, so collection never touches CUDA.
    if item.get_closest_marker("cuda") is not None and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU; none is available on this machine")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: every test draws its own reproducible data."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)) % (2**31)
    return torch.Generator().manual_seed(seed)
