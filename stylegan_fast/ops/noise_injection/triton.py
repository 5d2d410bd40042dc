"""Triton kernels of noise_injection and their launchers (``noise_injection_fwd_triton`` /
``noise_injection_bwd_triton``).

    y         = x + strength[c] * noise[n', 0, h, w]     (n' = n, or 0 for batch-shared noise)
    dnoise    = sum over c (and over n when noise is shared) of dy * strength[c]
    dstrength = sum over n, h, w of dy * noise[n', 0, h, w]

dx is dy itself (no kernel). The backward reads dy once and produces both reductions; it is
also every higher order (registration.py: the backward of the backward is two more backward
calls and broadcast products), so R1 through noise_injection needs nothing else.

Layouts: NCHW walks ``x`` as ``[N, C, H*W]`` with a tile of channels by pixels of one sample,
so the tile's noise row is loaded once and reused by every channel row of the tile;
channels_last walks ``[N*H*W, C]`` with a tile of pixels by channels, the strengths loaded
once per program. Pixels (NCHW) or channels (channels_last) are the contiguous axis: full-width
vector accesses when that axis is a multiple of 16 bytes.

Bytes (the minimum up to the [C] strengths and the small partials):
    forward   read x and noise, write y   (2 x numel + N*H*W elements; tiles of one noise row
              and several channels are adjacent in launch order, so repeated noise reads hit L2)
    backward  read dy and noise once, write dnoise and dstrength; the sums go through fp32
              (fp64) partials: [programs along the pixel axis, C] for dstrength and, where
              channel blocks or a shared noise image split dnoise, [splits, N*H*W] for dnoise,
              each added up by one more launch (_triton_partials.sum_partials).
Every product is formed before it is summed (as the reference's autograd does), so Inf and NaN
propagate exactly as in the reference. Compute runs in fp32 (fp64 for fp64); each output is
rounded once.

Imports triton at module level; ``ops/_registry.py`` imports this module on the first Triton call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ... import _library
from .. import _triton_launch as tl_launch
from .. import _triton_partials as tp
from .._common import statistics_dtype

# Kernels call nested @triton.jit helpers only outside their tile loops: under
# TRITON_INTERPRET=1 each nested call re-patches triton.language (~8 ms measured when these
# kernels were written; ~0.7 ms with Triton 3.9), which a call per tile would pay per tile.


@triton.jit
def _program_id(INDEX_64: tl.constexpr):
    """This program's index along the grid, int64 when offsets may pass 2^31."""
    pid = tl.program_id(0)
    if INDEX_64:
        pid = pid.to(tl.int64)
    return pid


@triton.jit
def _noise_fwd_kernel(
    x_ptr,
    noise_ptr,
    strength_ptr,
    y_ptr,
    channels,
    pixels,
    pixel_rows,
    NOISE_PER_SAMPLE: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    COMPUTE: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_CH: tl.constexpr,
):
    # One tile per program, channel blocks fastest (so the tiles sharing a noise row run
    # together). NCHW: tile [BLOCK_CH, BLOCK_P] of one sample; channels_last: [BLOCK_P, BLOCK_CH]
    # over the N*H*W pixel rows.
    pid = _program_id(INDEX_64)
    channel_blocks = tl.cdiv(channels, BLOCK_CH)
    ch = (pid % channel_blocks) * BLOCK_CH + tl.arange(0, BLOCK_CH)
    ch_mask = ch < channels
    rest = pid // channel_blocks
    strength = tl.load(strength_ptr + ch, mask=ch_mask, other=0.0).to(COMPUTE)
    if CHANNELS_LAST:
        p = rest * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = p < pixel_rows
        if NOISE_PER_SAMPLE:
            noise_offsets = p
        else:
            noise_offsets = p % pixels
        noise = tl.load(noise_ptr + noise_offsets, mask=p_mask, other=0.0).to(COMPUTE)
        mask = p_mask[:, None] & ch_mask[None, :]
        offsets = p[:, None] * channels + ch[None, :]
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(COMPUTE)
        y = x + strength[None, :] * noise[:, None]
    else:
        pixel_blocks = tl.cdiv(pixels, BLOCK_P)
        n = rest // pixel_blocks
        p = (rest % pixel_blocks) * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = p < pixels
        if NOISE_PER_SAMPLE:
            noise_row = n * pixels
        else:
            noise_row = 0
        noise = tl.load(noise_ptr + noise_row + p, mask=p_mask, other=0.0).to(COMPUTE)
        mask = ch_mask[:, None] & p_mask[None, :]
        offsets = (n * channels + ch)[:, None] * pixels + p[None, :]
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(COMPUTE)
        y = x + strength[:, None] * noise[None, :]
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


# groups and tiles_per_program follow the grid, which follows the compiled kernel's occupancy:
# not specialised on, so the kernel compiled to measure it is the one launched.
@triton.jit(do_not_specialize=["groups", "tiles_per_program"])
def _noise_bwd_kernel(
    dy_ptr,
    noise_ptr,
    strength_ptr,
    dnoise_ptr,
    dstrength_ptr,
    batch,
    channels,
    pixels,
    pixel_rows,
    groups,
    tiles_per_program,
    NOISE_PER_SAMPLE: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    COMPUTE_DNOISE: tl.constexpr,
    COMPUTE_DSTRENGTH: tl.constexpr,
    COMPUTE: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_CH: tl.constexpr,
):
    # dnoise_ptr: [splits, N*H*W] rows of per-pixel channel sums (dnoise itself when one
    # split covers all channels and noise is per sample); dstrength_ptr: [programs along the
    # pixel axis, C] rows of per-channel sums (dstrength itself when there is one such row).
    pid = _program_id(INDEX_64)
    group = pid % groups
    # The group's tiles along the summed axis: pixel rows (channels_last) or channels (NCHW).
    first = group * tiles_per_program
    if CHANNELS_LAST:
        summed_tiles = tl.cdiv(pixel_rows, BLOCK_P)
    else:
        summed_tiles = tl.cdiv(channels, BLOCK_CH)
    last = tl.minimum(first + tiles_per_program, summed_tiles)
    if CHANNELS_LAST:
        # Program (channel block, group of pixel tiles): per pixel tile, its rows' channel
        # sums go out at once; the channel sums run over the whole group.
        channel_block = pid // groups
        ch = channel_block * BLOCK_CH + tl.arange(0, BLOCK_CH)
        ch_mask = ch < channels
        strength = tl.load(strength_ptr + ch, mask=ch_mask, other=0.0).to(COMPUTE)
        ds_acc = tl.zeros([BLOCK_P, BLOCK_CH], COMPUTE)
        for tile in range(first, last):
            p = tile * BLOCK_P + tl.arange(0, BLOCK_P)
            p_mask = p < pixel_rows
            mask = p_mask[:, None] & ch_mask[None, :]
            dy = tl.load(dy_ptr + p[:, None] * channels + ch[None, :], mask=mask, other=0.0)
            dy = dy.to(COMPUTE)
            if COMPUTE_DNOISE:
                dn = tl.sum(dy * strength[None, :], axis=1)
                dn_offsets = channel_block * pixel_rows + p
                tl.store(dnoise_ptr + dn_offsets, dn.to(dnoise_ptr.dtype.element_ty), mask=p_mask)
            if COMPUTE_DSTRENGTH:
                if NOISE_PER_SAMPLE:
                    noise_offsets = p
                else:
                    noise_offsets = p % pixels
                noise = tl.load(noise_ptr + noise_offsets, mask=p_mask, other=0.0).to(COMPUTE)
                ds_acc += dy * noise[:, None]
        if COMPUTE_DSTRENGTH:
            ds = tl.sum(ds_acc, axis=0).to(dstrength_ptr.dtype.element_ty)
            tl.store(dstrength_ptr + group * channels + ch, ds, mask=ch_mask)
    else:
        # Program (sample, pixel block, group of channel tiles): the pixel sums run over the
        # group's channels; each channel tile's sums go out at once, one row per (n, pixel
        # block).
        rest = pid // groups
        pixel_blocks = tl.cdiv(pixels, BLOCK_P)
        n = rest // pixel_blocks
        pixel_block = rest % pixel_blocks
        p = pixel_block * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = p < pixels
        if COMPUTE_DSTRENGTH:
            if NOISE_PER_SAMPLE:
                noise_row = n * pixels
            else:
                noise_row = 0
            noise = tl.load(noise_ptr + noise_row + p, mask=p_mask, other=0.0).to(COMPUTE)
        dn_acc = tl.zeros([BLOCK_CH, BLOCK_P], COMPUTE)
        for tile in range(first, last):
            ch = tile * BLOCK_CH + tl.arange(0, BLOCK_CH)
            ch_mask = ch < channels
            mask = ch_mask[:, None] & p_mask[None, :]
            offsets = (n * channels + ch)[:, None] * pixels + p[None, :]
            dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(COMPUTE)
            if COMPUTE_DNOISE:
                strength = tl.load(strength_ptr + ch, mask=ch_mask, other=0.0).to(COMPUTE)
                dn_acc += dy * strength[:, None]
            if COMPUTE_DSTRENGTH:
                ds = tl.sum(dy * noise[None, :], axis=1).to(dstrength_ptr.dtype.element_ty)
                ds_row = n * pixel_blocks + pixel_block
                tl.store(dstrength_ptr + ds_row * channels + ch, ds, mask=ch_mask)
        if COMPUTE_DNOISE:
            dn = tl.sum(dn_acc, axis=0).to(dnoise_ptr.dtype.element_ty)
            tl.store(dnoise_ptr + (group * batch + n) * pixels + p, dn, mask=p_mask)


# ---------------------------------------------------------------------------------------------
# Launchers


def _check(x: torch.Tensor, noise: torch.Tensor, strength: torch.Tensor, x_name: str) -> None:
    # The same checks, and messages, as the C++ kernels (csrc/noise_injection.cpp).
    if not (x.device == noise.device == strength.device) or not (x.is_cuda or x.is_cpu):
        raise RuntimeError(
            f"noise_injection (triton): {x_name}, noise and strength must be on one CUDA or CPU "
            "device"
        )
    if x.dim() != 4:
        raise RuntimeError(
            f"noise_injection (triton): {x_name} must have shape [N, C, H, W], got {list(x.shape)}"
        )
    n, c, h, w = x.shape
    if noise.dim() != 4 or list(noise.shape) not in ([n, 1, h, w], [1, 1, h, w]):
        raise RuntimeError(
            f"noise_injection (triton): noise must have shape [N, 1, H, W] or [1, 1, H, W] for "
            f"{x_name} of shape {list(x.shape)}, got {list(noise.shape)}"
        )
    if strength.dim() != 1 or strength.shape[0] != c:
        raise RuntimeError(
            f"noise_injection (triton): strength must have shape [C] = [{c}], got "
            f"{list(strength.shape)}"
        )
    if noise.dtype != x.dtype or strength.dtype != x.dtype:
        raise RuntimeError(
            f"noise_injection (triton): noise and strength must have the dtype of {x_name}"
        )


def _flags(t: torch.Tensor, noise: torch.Tensor, config, channels_last: bool) -> dict:
    """The constexprs (and warps) both kernels take, for ``t`` (x or dy, ``[N, C, H, W]``) in
    ``kernel_memory_format``. The tile's contiguous axis (channels for channels_last, a
    sample's pixels for NCHW) spans up to ``config.max_cols``, the other the rest of
    ``config.tile``."""
    batch, channels, height, width = t.shape
    if channels_last:
        block_ch = min(tp.next_power_of_2(channels), config.max_cols)
        block_p = min(tp.next_power_of_2(batch * height * width), max(1, config.tile // block_ch))
    else:
        block_p = min(tp.next_power_of_2(height * width), config.max_cols)
        block_ch = min(tp.next_power_of_2(channels), max(1, config.tile // block_p))
    return dict(
        NOISE_PER_SAMPLE=noise.shape[0] == batch,
        CHANNELS_LAST=channels_last,
        COMPUTE=tl_launch.compute_dtype(t.dtype),
        # The backward's partials hold fewer elements than dy (at most one per channel or
        # pixel tile).
        INDEX_64=tp.needs_int64_index(t.numel()),
        BLOCK_P=block_p,
        BLOCK_CH=block_ch,
        num_warps=config.num_warps,
    )


def forward(x: torch.Tensor, noise: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """``noise_injection_fwd_triton``: ``y = x + strength[c] * noise``.

    ``x: [N, C, H, W]``, ``noise: [N, 1, H, W]`` or ``[1, 1, H, W]``, ``strength: [C]``;
    ``y`` shaped like ``x`` in ``kernel_memory_format(x)``.
    """
    _check(x, noise, strength, "x")
    fmt = _library.kernel_memory_format(x)
    y = _library.new_output(x.shape, x, fmt)
    if x.numel() == 0:
        return y
    batch, channels, height, width = x.shape
    pixels = height * width
    xc = x.contiguous(memory_format=fmt)
    channels_last = fmt == torch.channels_last
    config = tp.launch_config(x)
    flags = _flags(x, noise, config, channels_last)
    block_p, block_ch = flags["BLOCK_P"], flags["BLOCK_CH"]
    if channels_last:
        tiles = triton.cdiv(batch * pixels, block_p)
    else:
        tiles = batch * triton.cdiv(pixels, block_p)
    grid = (tiles * triton.cdiv(channels, block_ch),)
    tl_launch.launch(
        _noise_fwd_kernel,
        grid,
        x,
        xc,
        noise.contiguous(),
        strength.contiguous(),
        y,
        channels,
        pixels,
        batch * pixels,
        **flags,
    )
    return y


def backward(
    dy: torch.Tensor,
    noise: torch.Tensor,
    strength: torch.Tensor,
    compute_dnoise: bool,
    compute_dstrength: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``noise_injection_bwd_triton``: ``(dnoise, dstrength)`` for ``dy: [N, C, H, W]``.

    ``dnoise`` is shaped like ``noise`` (summed over the batch too for ``[1, 1, H, W]``
    noise), ``dstrength`` is ``[C]``; each is ``[0]`` when not requested.
    """
    _check(dy, noise, strength, "dy")
    batch, channels, height, width = dy.shape
    pixels = height * width
    dnoise = _library.new_output(noise.shape, noise) if compute_dnoise else noise.new_empty([0])
    dstrength = (
        _library.new_output([channels], strength) if compute_dstrength else strength.new_empty([0])
    )
    if dy.numel() == 0 or not (compute_dnoise or compute_dstrength):
        # Sums over nothing; noise may still have pixels when N or C is zero.
        return dnoise.zero_(), dstrength.zero_()
    fmt = _library.kernel_memory_format(dy)
    dyc = dy.contiguous(memory_format=fmt)
    channels_last = fmt == torch.channels_last
    noise_per_sample = noise.shape[0] == batch
    config = tp.launch_config(dy)
    flags = _flags(dy, noise, config, channels_last)
    flags.update(COMPUTE_DNOISE=compute_dnoise, COMPUTE_DSTRENGTH=compute_dstrength)
    block_p, block_ch = flags["BLOCK_P"], flags["BLOCK_CH"]
    if channels_last:
        # [N*H*W, C]: kept axis channels, summed (for dstrength) the pixel rows.
        kept_blocks = triton.cdiv(channels, block_ch)
        summed_tiles = triton.cdiv(batch * pixels, block_p)
    else:
        # [N, C, H*W]: kept (sample, pixel block), summed (for dnoise) the channels.
        kept_blocks = batch * triton.cdiv(pixels, block_p)
        summed_tiles = triton.cdiv(channels, block_ch)
    acc_dtype = statistics_dtype(dy.dtype)
    noise_c, strength_c = noise.contiguous(), strength.contiguous()
    sizes = (batch, channels, pixels, batch * pixels)
    # The sums split until the grid is one wave of the compiled kernel (placeholders of the
    # partials' dtype stand in for the buffers, whose sizes follow the split).
    placeholder = dy.new_empty([0], dtype=acc_dtype)
    target = tp.reduction_target(
        config, _noise_bwd_kernel, dy, dyc, noise_c, strength_c,
        placeholder if compute_dnoise else dyc, placeholder if compute_dstrength else dyc,
        *sizes, 1, 1, **flags,
    )  # fmt: skip
    tiles_per_program, groups = tp.split_reduction(kept_blocks, summed_tiles, target)
    # channels_last splits dnoise by channel block and dstrength by group; NCHW the reverse.
    dnoise_splits, dstrength_rows = (
        (kept_blocks, groups) if channels_last else (groups, kept_blocks)
    )
    # Write straight into the outputs where one split / one row holds the whole sum.
    dnoise_direct = compute_dnoise and dnoise_splits == 1 and noise_per_sample
    dstrength_direct = compute_dstrength and dstrength_rows == 1
    dnoise_buffer = dnoise
    if compute_dnoise and not dnoise_direct:
        dnoise_buffer = _library.new_output([dnoise_splits, batch * pixels], dy, dtype=acc_dtype)
    dstrength_buffer = dstrength
    if compute_dstrength and not dstrength_direct:
        dstrength_buffer = _library.new_output([dstrength_rows, channels], dy, dtype=acc_dtype)
    tl_launch.launch(
        _noise_bwd_kernel, (kept_blocks * groups,), dy, dyc, noise_c, strength_c,
        dnoise_buffer if compute_dnoise else dyc,  # pointers never used stand in for empties
        dstrength_buffer if compute_dstrength else dyc,
        *sizes, groups, tiles_per_program, **flags,
    )  # fmt: skip
    if compute_dnoise and not dnoise_direct:
        # [splits, N*H*W] -> per-sample [N*H*W], or shared [H*W] (rows = splits * N).
        rows = dnoise_splits if noise_per_sample else dnoise_splits * batch
        summed = tp.sum_partials(dnoise_buffer.view(rows, -1), dy.dtype)
        dnoise = summed.view(noise.shape)
    if compute_dstrength and not dstrength_direct:
        dstrength = tp.sum_partials(dstrength_buffer, dy.dtype)
    return dnoise, dstrength
