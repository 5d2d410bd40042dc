"""The metric tests' data: real faces from scikit-image's bundled LFW subset (offline)."""

import pytest
import torch


@pytest.fixture(scope="session")
def faces():
    """``[200, 3, 25, 25]`` float32 in [-1, 1]: LFW faces (grayscale, replicated to RGB)."""
    from skimage.data import lfw_subset

    x = torch.from_numpy(lfw_subset()).to(torch.float32)
    return (x * 2 - 1).unsqueeze(1).repeat(1, 3, 1, 1)
