"""A fractional horizontal translation as stylegan3's equivariance metric filters images: a
windowed-sinc-like filter of shape [1, 6] through filter2d, padded on x only."""

import torch
from torch_utils.ops import upfirdn2d


def fractional_translate_x(x, taps=(-0.0625, 0.25, 0.75, 0.125, -0.0625, 0.0)):
    f = torch.tensor(taps, dtype=torch.float32).unsqueeze(0)  # [1, 6]
    return upfirdn2d.filter2d(x, f / f.sum(), padding=[2, 3, 0, 0])
