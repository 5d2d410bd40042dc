"""The Triton engine of per-plane instance normalisation with a fused prologue and style affine:
behind ``adain`` (identity prologue) and ``layer_epilogue`` (noise, bias, leaky ReLU). Imported
only by ``ops/adain/triton.py`` and ``ops/layer_epilogue/triton.py``, on their first call (it
imports triton). One job a module:

- ``kernels.py``: the ``@triton.jit`` kernels and the helpers they share;
- ``plans.py``: how a launch walks the tensor (the plans below, their block sizes and grids);
- ``launch.py``: ``forward`` and ``backward``, which allocate the outputs and launch a plan's
  kernels for a ``Prologue`` (its optional terms; ``IDENTITY`` for adain), and the input
  checks the ops' launchers share.

For ``x: [N, C, H, W]`` and each plane ``(n, c)`` of ``HW = H * W`` pixels:

    v = x + noise_strength[c] * noise[n, hw] + bias[c]      (terms present or not)
    u = v * slope(v),  slope(v) = slope_pos if v > 0 else slope_neg      (identity for adain)
    mean = mean_hw(u),  rstd = 1 / sqrt(mean_hw((u - mean)^2) + eps)
    y = (u - mean) * (rstd * scale[n, c]) + style_bias[n, c]

and the backward, with ``u_hat = (u - mean) * rstd`` and ``g = dy * scale`` element by element
(as autograd of the reference forms it, so an infinite scale gives the reference's NaNs):

    dscale = sum_hw dy * u_hat,  dstyle_bias = sum_hw dy
    dt = slope(v) * rstd * (g - mean_hw(g) - u_hat * mean_hw(g * u_hat))
    dx = dt,  dbias = sum_{n,hw} dt,  dnoise_strength = sum_{n,hw} dt * noise,
    dnoise[n, hw] = sum_c dt * noise_strength[c]  (also summed over n for a shared noise plane)

Plans and their memory traffic. ``X`` = the bytes of x; "loads" counts every byte a kernel
loads or stores (what the interpreter sees), "DRAM" what reaches DRAM; noise and the [N, C] /
[C] tensors are 1/C of X or less per read and left out. The minimum is one read of each input
and one write of each output: ``2X`` forward, ``3X`` backward. The limits below are the GPU's
(``plans._CUDA``, ``plans.plan_for``); float64 halves the tiles and plane limits, and a contiguous
run (pixels NCHW, channels channels_last) that is not a multiple of 16 values quarters the
tiles.

- **one pass, whole planes** (a tile holds the planes: NCHW planes of up to 4096 pixels
  (64x64) forward and 2048 backward, small planes sharing a tile of that many values;
  channels_last, a tile of >= 16 channels x the plane, up to 256 pixels forward and 128
  backward): one program loads the tile, reduces the statistics on chip (an exact two-pass
  variance over values already loaded) and writes the output. Loads = DRAM = ``2X`` forward,
  ``3X`` backward: the minimum.
- **one pass, sweep** (NCHW planes up to 128x128, one a program; channels_last up to 32x32,
  16 channels a program): the program sweeps its planes in sub-tiles (4096 values forward,
  2048 backward; channels_last 2048 and 1024) twice, statistics then output (backward: the
  four sums, then dx), so no plane is held in registers (a whole 128x128 plane took 128
  registers a thread at 16 warps, all an SM has for one such program, and spilled up to 592
  bytes). Loads ``3X`` forward (x twice), ``5X`` backward (x and dy twice); DRAM ``2X`` and
  ``3X``: the second sweep re-reads what the program read microseconds before, assumed to
  hit L2. For that the grid is persistent: programs loop over row blocks, and only as many
  run as the compiled kernel lets an SM hold (``_triton_launch.programs_per_sm``) and as keep
  the bytes all running programs sweep within ``_L2_SHARE`` (3/4) of the L2 (an H100's 50
  MB, 132 SMs): a 128x128 plane is 64 KiB of fp32 (forward: at most 4 programs a SM, 33 MiB a
  wave) or 128 KiB of x + dy (backward: 2 a SM, 33 MiB); fp16/bf16 half that. The L2 hit is
  assumed from cache sizes, not measured (no GPU was available).
- **split** (bigger planes): pass 1 gives each chunk of a plane its own mean and sum of squared
  deviations (merged over the chunk's sub-tiles with Chan's update, then over the chunks in a
  fixed order by a small finalize kernel: deterministic, no atomics, no E[u^2] - E[u]^2
  cancellation); pass 2 re-reads x and writes y. Loads = DRAM = ``3X`` forward (x read twice),
  ``5X`` backward (x and dy read twice): a separate launch re-reads a whole tensor, which L2
  does not hold. Holding a plane on chip between the passes needs a grid-wide barrier, which
  Triton cannot express safely (a spin-wait deadlocks under the interpreter and whenever the
  programs of a plane are not co-resident); torch.compile's reduction-then-pointwise code
  pays the same re-read at every plane size.
- **dnoise** (only when noise requires grad, which StyleGAN's drawn noise does not): a separate
  kernel re-reads x and dy and reduces over channels (``+2X``), keeping the main kernels free of
  a cross-plane reduction.

Launches: one pass, one forward, one backward (adain) or two (layer_epilogue: + the ordered
batch sum of the dbias/dnoise_strength partials); split, three each (+ the batch sum).

fp16/bf16 compute in float32 (float64 for float64); every reduction has a fixed order, so
results are bitwise reproducible (a persistent program sums its planes exactly as a program
per plane would). Scalars (slopes, eps) are runtime float32 hi/lo pairs
(``_triton_launch.float32_split``): a new value compiles nothing, and float64 keeps them to
~2^-48.

Block sizes: on CUDA they follow register counts ptxas reported for sm_90 (see ``_CUDA``; no
kernel has been timed on a GPU yet): every plan leaves room for two resident programs per SM
and spills nothing, under Triton 3.6 and 3.9 (``.ci/compile_triton.py``). On CPU tensors
(``TRITON_INTERPRET=1``) programs take as much as possible while small test shapes still reach
every plan: whole planes up to 32 pixels, the sweep (two sub-tiles a sweep) up to 4096, the
split plan above.
"""

from .launch import DTYPE_NAMES, IDENTITY, Prologue, backward, check_device, forward

__all__ = ["DTYPE_NAMES", "IDENTITY", "Prologue", "backward", "check_device", "forward"]
