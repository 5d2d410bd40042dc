"""upfirdn2d's geometry, shared by the public function, the registration and the Triton
launcher: output sizes, the adjoint's parameters, and which filters and factors the Triton
kernel serves. Plain Python (no torch, no triton), so every layer may import it."""

from __future__ import annotations


def output_size(in_size, up: int, down: int, pad0: int, pad1: int, taps: int):
    """Samples along one axis after upsampling, padding, 'valid' filtering, downsampling."""
    return (in_size * up + pad0 + pad1 - taps) // down + 1


def centred_padding(fw: int, fh: int, up: tuple[int, int], down: tuple[int, int], extra):
    """``(padx0, padx1, pady0, pady1)`` that centre a ``fh x fw`` filter for upsampling by
    ``up`` or downsampling by ``down`` (the other ``(1, 1)``; both: plain filtering, the output
    keeping the input's size), plus the ``extra`` padding (NVlabs' upsample2d, downsample2d
    and filter2d). Per axis: ``((taps + up - down) // 2, (taps - up - down + 1) // 2)``."""
    (upx, upy), (downx, downy) = up, down
    padx0, padx1, pady0, pady1 = extra
    return (
        padx0 + (fw + upx - downx) // 2,
        padx1 + (fw - upx - downx + 1) // 2,
        pady0 + (fh + upy - downy) // 2,
        pady1 + (fh - upy - downy + 1) // 2,
    )


def adjoint_params(in_h, in_w, out_h, out_w, fh, fw, up, down, padding, flip_filter):
    """``(up, down, padding, flip_filter)`` of the upfirdn2d that is the adjoint (transpose)
    of ``upfirdn2d(·, f, up, down, padding, flip_filter, gain)`` on ``[.., in_h, in_w]``.

    Along one axis the forward is ``y[m] = sum_k x[k] * g[k * up - m * down + pad0]`` with
    ``g`` the cross-correlation taps (``f`` flipped unless ``flip_filter``). Its transpose
    ``dx[k] = sum_m dy[m] * g[k * up - m * down + pad0]`` is upfirdn2d of ``dy`` with up and
    down swapped and the taps reversed (``flip_filter`` negated) once its first padding is
    ``taps - pad0 - 1``; the second padding makes the output exactly ``in`` samples long.
    (csrc/autograd.cpp computes the same in C++; tests/ops/test_autograd_requests.py checks
    that its backward calls the op with these parameters.)
    """
    upx, upy = up
    downx, downy = down
    padx0, _, pady0, _ = padding
    adj_padding = (
        fw - padx0 - 1,
        in_w * upx - out_w * downx + padx0 - upx + 1,
        fh - pady0 - 1,
        in_h * upy - out_h * downy + pady0 - upy + 1,
    )
    return (downx, downy), (upx, upy), adj_padding, not flip_filter


# The Triton kernel unrolls every phase and tap and keeps a window of input rows in registers
# (up to taps x taps values per thread): it serves filters and factors up to these sizes.
TRITON_MAX_TAPS = 8
TRITON_MAX_FACTOR = 8


def triton_reason(fh: int, fw: int, up: tuple[int, int], down: tuple[int, int]) -> str | None:
    """Why the Triton kernel cannot serve a ``fh x fw`` filter with these factors (None: it
    can). The adjoint (up and down swapped, same filter) is served whenever the op is."""
    if max(fh, fw) > TRITON_MAX_TAPS:
        return (
            f"its kernel unrolls the filter taps and serves at most {TRITON_MAX_TAPS} per axis "
            f"(the filter is {fh}x{fw})"
        )
    if max(*up, *down) > TRITON_MAX_FACTOR:
        return (
            f"its kernel unrolls the output phases and serves up and down factors of at most "
            f"{TRITON_MAX_FACTOR} (up={list(up)}, down={list(down)})"
        )
    return None
