"""Discriminator: its blocks against F-ops compositions (float64), minibatch stddev, class
scores, progressive growing, lod_images, layouts and dtypes, and bad arguments."""

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_fast.models import Discriminator, lod_images

F64 = torch.float64
SQRT2 = math.sqrt(2)


def images(n=4, seed=0, resolution=32):
    return torch.randn(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def equal_conv(x, layer, **kwargs):
    return F.conv2d(x, layer.weight * SQRT2 / math.sqrt(layer.weight[0].numel()), **kwargs)


def test_block_and_epilogue_first_principles(tiny_discriminator):
    D = tiny_discriminator().double()
    block = D.blocks[-1]  # 32x32 -> 16x16
    x = torch.randn(4, block.conv0.in_channels, 32, 32, dtype=F64)
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=F64)
    blur = (torch.outer(taps, taps) / 16).expand(x.shape[1], 1, 3, 3)
    y = F.leaky_relu(equal_conv(x, block.conv0, padding=1) + block.conv0.bias[:, None, None], 0.2)
    y = F.conv2d(y, blur, padding=1, groups=x.shape[1])
    y = F.avg_pool2d(equal_conv(y, block.conv1, padding=1), 2) + block.conv1.bias[:, None, None]
    torch.testing.assert_close(block(x), F.leaky_relu(y, 0.2))

    epilogue = D.blocks[0]
    x = torch.randn(4, 64, 4, 4, dtype=F64)
    std = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()  # one group of 4
    y = torch.cat([x, std.expand(4, 1, 4, 4)], dim=1)
    y = equal_conv(y, epilogue.conv, padding=1) + epilogue.conv.bias[:, None, None]
    y = F.leaky_relu(y, 0.2)
    fc, out = epilogue.fc, epilogue.out
    y = F.leaky_relu(y.flatten(1) @ (fc.weight * SQRT2 / math.sqrt(1024)).T + fc.bias, 0.2)
    y = y @ (out.weight / math.sqrt(out.in_features)).T + out.bias
    torch.testing.assert_close(epilogue(x, None), y)


def test_forward_shape_and_wiring(tiny_discriminator):
    D = tiny_discriminator()
    x = images()
    logits = D(x)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    h = D.fromrgb[-1](x)
    for block in reversed(D.blocks[1:]):
        h = block(h)
    torch.testing.assert_close(D.blocks[0](h, None), logits)
    assert D(images(3)).shape == (3, 1)  # group size min(4, N)
    with pytest.raises(ValueError, match="divisible by the group size"):
        D(images(6))
    assert Discriminator.from_preset("tiny", mbstd_group_size=1)(images(6)).shape == (6, 1)


def test_progressive_discriminator(tiny_discriminator):
    D = tiny_discriminator(progressive=True)
    x = images()
    out = {}
    for lod in [0, 1 - 1e-4, 1, 1 + 1e-4, 3]:
        D.set_lod(lod)
        out[lod] = D(x)
    # Continuous at lod 1: a 1e-4 step moves the logits by a tiny part of a whole level's.
    level_step = (out[0] - out[1]).abs().max()
    assert level_step > 1e-3
    assert (out[1 - 1e-4] - out[1]).abs().max() < 1e-2 * level_step
    assert (out[1 + 1e-4] - out[1]).abs().max() < 1e-2 * level_step
    # At lod 3 only the 4x4 average of the image matters.
    coarse = F.avg_pool2d(x, 8).repeat_interleave(8, 2).repeat_interleave(8, 3)
    torch.testing.assert_close(D(coarse), out[3])
    D.set_lod(0)
    fixed = Discriminator.from_preset("tiny")
    fixed.load_state_dict({k: v for k, v in D.state_dict().items() if k in fixed.state_dict()})
    torch.testing.assert_close(fixed(x), out[0])
    with pytest.raises(ValueError, match="fixed resolution"):
        fixed.set_lod(0.5)


def test_lod_images(rng):
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=F64)
    assert torch.equal(lod_images(x, 0), x)
    one = lod_images(x, 1)
    torch.testing.assert_close(one[:, :, ::2, ::2], F.avg_pool2d(x, 2))
    nearest = F.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(one, nearest)
    torch.testing.assert_close(lod_images(x, 0.25), 0.75 * x + 0.25 * one)
    with pytest.raises(ValueError, match="divisible"):
        lod_images(x, 3.5)


def test_channels_last_and_bfloat16(tiny_discriminator):
    D = tiny_discriminator()
    x = images()
    expected = D(x)
    cl = D.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, expected, rtol=1e-4, atol=1e-4)
    bf = D.to(torch.bfloat16)(x.bfloat16())
    assert bf.dtype == torch.bfloat16
    assert (bf.float() - expected).norm() / expected.norm() < 0.05


def test_bad_arguments(tiny_discriminator):
    D = tiny_discriminator()
    with pytest.raises(ValueError, match=r"img must have shape .* \[N, 3, 32, 32\]"):
        D(images(resolution=16))
    with pytest.raises(TypeError, match="floating-point"):
        D(images().to(torch.uint8))
    with pytest.raises(ValueError, match="unconditional"):
        D(images(), torch.eye(4))
