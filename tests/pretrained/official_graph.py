"""An independent float64 NumPy forward of NVlabs' StyleGAN1 graph (``G_style``, ``D_basic``),
written from the math of ``training/networks_stylegan.py``, reading the variables by their
official names and TensorFlow layouts. NumPy only (no torch), so it shares nothing with the
code under test.

Variables are ``{name: array}`` named as NVlabs' ``Network.vars`` (``G_mapping/Dense0/weight``,
``G_synthesis/8x8/Conv0_up/weight``, ``dlatent_avg``; D's ``4x4/Dense0/weight``). Weights are
stored the equalized-learning-rate way: the graph multiplies them by ``gain / sqrt(fan_in) *
lrmul`` (fan-in: all but the last axis of the TF shape) and biases by ``lrmul``.
"""

from __future__ import annotations

import numpy as np

SQRT2 = np.sqrt(2.0)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _runtime_weight(w, gain: float, lrmul: float = 1.0) -> np.ndarray:
    w = _f64(w)
    return w * (gain / np.sqrt(np.prod(w.shape[:-1])) * lrmul)


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def dense(x, weight, bias, gain: float, lrmul: float = 1.0):
    """``x: [N, ...]`` flattened in NCHW order; ``weight: [in, out]``."""
    x = x.reshape(x.shape[0], -1)
    return x @ _runtime_weight(weight, gain, lrmul) + _f64(bias) * lrmul


def conv2d(x, weight, gain: float, stride: int = 1):
    """Cross-correlation with zero 'SAME' padding. ``x: [N, Cin, H, W]``, ``weight: [kh, kw,
    Cin, Cout]`` (already scaled unless ``gain`` is None). Stride 2 takes even kernels."""
    w = _f64(weight) if gain is None else _runtime_weight(weight, gain)
    k = w.shape[0]
    n, _, h, width = x.shape
    out_h, out_w = h // stride, width // stride
    total = max((out_h - 1) * stride + k - h, 0)
    before = total // 2
    xp = np.pad(x, [(0, 0), (0, 0), (before, total - before), (before, total - before)])
    out = np.zeros([n, w.shape[3], out_h, out_w])
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, :, dy : dy + stride * out_h : stride, dx : dx + stride * out_w : stride]
            out += np.einsum("nihw,io->nohw", patch, w[dy, dx])
    return out


def _pad_and_sum(w):
    """The 4x4 kernel TF's fused layers build from a 3x3 one: pad by one, add four shifts."""
    p = np.pad(w, [(1, 1), (1, 1), (0, 0), (0, 0)])
    return p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1]


def conv2d_transpose_2x(x, kernel):
    """TF ``conv2d_transpose`` with stride 2, 'SAME' output ``2H x 2W``, ``kernel: [k, k, Cout,
    Cin]``: the adjoint of the stride-2 'SAME' convolution, written as its scatter
    ``out[2a + dy - p, 2b + dx - p] += x[a, b] * kernel[dy, dx]`` with ``p`` that
    convolution's leading padding."""
    n, _, h, width = x.shape
    k = kernel.shape[0]
    out_h, out_w = 2 * h, 2 * width
    before = max((h - 1) * 2 + k - out_h, 0) // 2
    full = np.zeros([n, kernel.shape[2], out_h + 2 * k, out_w + 2 * k])
    for dy in range(k):
        for dx in range(k):
            contrib = np.einsum("nihw,oi->nohw", x, kernel[dy, dx])
            full[:, :, dy : dy + 2 * h : 2, dx : dx + 2 * width : 2] += contrib
    return full[:, :, before : before + out_h, before : before + out_w]


def upscale(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def downscale(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def blur(x):
    """The ``[1, 2, 1]`` filter (outer product, normalised), per channel, zero 'SAME' padding."""
    taps = np.array([1.0, 2.0, 1.0])
    f = np.outer(taps, taps) / 16.0
    h, w = x.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    return sum(f[dy, dx] * xp[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))


def upscale_conv2d(x, weight, fused: bool):
    """G's ``Conv0_up``: nearest x2 then 3x3 conv, or (fused) TF's transposed convolution of
    the padded-and-summed kernel (transposed to ``[k, k, out, in]``)."""
    if not fused:
        return conv2d(upscale(x), weight, SQRT2)
    w = _runtime_weight(weight, SQRT2).transpose(0, 1, 3, 2)
    return conv2d_transpose_2x(x, _pad_and_sum(w))


def conv2d_downscale(x, weight, fused: bool):
    """D's ``Conv1_down``: 3x3 conv then 2x2 average, or (fused) one stride-2 conv with the
    padded-and-summed kernel times 1/4."""
    if not fused:
        return downscale(conv2d(x, weight, SQRT2))
    w = _pad_and_sum(_runtime_weight(weight, SQRT2)) * 0.25
    return conv2d(x, w, None, stride=2)


def mapping(v, z, labels=None, *, lrmul: float = 0.01):
    """``z: [N, z]`` (and one-hot ``labels: [N, label_size]``) -> ``w: [N, w_dim]``."""
    x = _f64(z)
    if labels is not None:
        x = np.concatenate([x, _f64(labels) @ _f64(v["G_mapping/LabelConcat/weight"])], axis=1)
    x = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-8)
    i = 0
    while f"G_mapping/Dense{i}/weight" in v:
        w, b = v[f"G_mapping/Dense{i}/weight"], v[f"G_mapping/Dense{i}/bias"]
        x = lrelu(dense(x, w, b, SQRT2, lrmul))
        i += 1
    return x


def truncate(w, dlatent_avg, psi: float, cutoff: int):
    """``w: [N, L, D]``: layers ``< cutoff`` moved toward ``dlatent_avg`` by ``psi``."""
    layer = np.arange(w.shape[1])[None, :, None]
    coefs = np.where(layer < cutoff, psi, 1.0)
    avg = _f64(dlatent_avg)
    return avg + (w - avg) * coefs


def _epilogue(v, scope, x, w, noise):
    if noise is not None:
        x = x + _f64(noise) * _f64(v[f"{scope}/Noise/weight"])[None, :, None, None]
    x = lrelu(x + _f64(v[f"{scope}/bias"])[None, :, None, None])
    x = x - x.mean(axis=(2, 3), keepdims=True)
    x = x / np.sqrt(np.mean(x * x, axis=(2, 3), keepdims=True) + 1e-8)
    style = dense(w, v[f"{scope}/StyleMod/weight"], v[f"{scope}/StyleMod/bias"], 1.0)
    c = x.shape[1]
    return x * (style[:, :c, None, None] + 1) + style[:, c:, None, None]


def synthesis(v, ws, noise=None, *, lod: float = 0.0, fused_from: int = 128):
    """``ws: [N, L, D]`` -> images ``[N, C, R, R]`` (the 'linear' structure: every level's
    ToRGB, cross-faded by ``lod``). ``noise``: one ``[N or 1, 1, r, r]`` array per layer, or
    None for the pickle's ``noise<i>`` variables (``randomize_noise=False``)."""
    ws = _f64(ws)
    num_layers = ws.shape[1]
    log2 = num_layers // 2 + 1
    if noise is None:
        noise = [v.get(f"G_synthesis/noise{i}") for i in range(num_layers)]
    s = "G_synthesis/"

    def torgb(res, x):
        name = f"{s}ToRGB_lod{log2 - res}"
        return conv2d(x, v[f"{name}/weight"], 1.0) + _f64(v[f"{name}/bias"])[None, :, None, None]

    const = _f64(v[f"{s}4x4/Const/const"])
    x = np.repeat(const, ws.shape[0], axis=0)
    x = _epilogue(v, f"{s}4x4/Const", x, ws[:, 0], noise[0])
    x = conv2d(x, v[f"{s}4x4/Conv/weight"], SQRT2)
    x = _epilogue(v, f"{s}4x4/Conv", x, ws[:, 1], noise[1])
    images = torgb(2, x)
    for res in range(3, log2 + 1):
        scope = f"{s}{2**res}x{2**res}"
        fused = 2**res >= fused_from
        x = blur(upscale_conv2d(x, v[f"{scope}/Conv0_up/weight"], fused))
        x = _epilogue(v, f"{scope}/Conv0_up", x, ws[:, 2 * res - 4], noise[2 * res - 4])
        x = conv2d(x, v[f"{scope}/Conv1/weight"], SQRT2)
        x = _epilogue(v, f"{scope}/Conv1", x, ws[:, 2 * res - 3], noise[2 * res - 3])
        t = np.clip(lod - (log2 - res), 0.0, 1.0)
        img = torgb(res, x)
        images = img + (upscale(images) - img) * t
    return images


def generator(v, z, labels=None, *, psi=None, cutoff=8, noise=None, lod=None, fused_from=128):
    """``G_style`` at inference: mapping, broadcast, truncation (when ``psi`` is given),
    synthesis. ``lod``: None reads the ``lod`` variable."""
    w = mapping(v, z, labels)
    blocks = [n.split("/")[1] for n in v if n.startswith("G_synthesis/") and "x" in n.split("/")[1]]
    log2 = int(round(np.log2(max(int(b.split("x")[0]) for b in blocks))))
    num_layers = 2 * log2 - 2
    ws = np.repeat(w[:, None], num_layers, axis=1)
    if psi is not None:
        ws = truncate(ws, v["dlatent_avg"], psi, cutoff)
    lod = float(v["lod"]) if lod is None else lod
    return synthesis(v, ws, noise, lod=lod, fused_from=fused_from)


def minibatch_stddev(x, group_size: int = 4, num_features: int = 1):
    """Appends the mean standard deviation over groups of ``min(group_size, N)`` samples;
    sample ``g * M + m`` is in group ``m``."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, n // g, num_features, c // num_features, h, w)
    y = y - y.mean(axis=0, keepdims=True)
    y = np.sqrt(np.mean(y * y, axis=0) + 1e-8)
    y = y.mean(axis=(2, 3, 4))  # [M, num_features]
    y = np.tile(y, (g, 1))[:, :, None, None] * np.ones([1, 1, h, w])
    return np.concatenate([x, y], axis=1)


def discriminator(v, images, labels=None, *, group_size=4, num_features=1, lod=None):
    """``D_basic`` ('linear' structure): ``images: [N, C, R, R]`` -> scores ``[N, 1]``."""
    x_in = _f64(images)
    log2 = int(round(np.log2(x_in.shape[2])))
    lod = float(v["lod"]) if lod is None else lod

    def fromrgb(img, res):
        name = f"FromRGB_lod{log2 - res}"
        return lrelu(
            conv2d(img, v[f"{name}/weight"], SQRT2) + _f64(v[f"{name}/bias"])[:, None, None]
        )

    img = x_in
    x = fromrgb(img, log2)
    for res in range(log2, 2, -1):
        scope = f"{2**res}x{2**res}"
        fused = 2**res >= 128
        x = lrelu(
            conv2d(x, v[f"{scope}/Conv0/weight"], SQRT2)
            + _f64(v[f"{scope}/Conv0/bias"])[:, None, None]
        )
        x = conv2d_downscale(blur(x), v[f"{scope}/Conv1_down/weight"], fused)
        x = lrelu(x + _f64(v[f"{scope}/Conv1_down/bias"])[:, None, None])
        img = downscale(img)
        y = fromrgb(img, res - 1)
        t = np.clip(lod - (log2 - res), 0.0, 1.0)
        x = x + (y - x) * t
    if group_size > 1:
        x = minibatch_stddev(x, group_size, num_features)
    x = lrelu(conv2d(x, v["4x4/Conv/weight"], SQRT2) + _f64(v["4x4/Conv/bias"])[:, None, None])
    x = lrelu(dense(x, v["4x4/Dense0/weight"], v["4x4/Dense0/bias"], SQRT2))
    scores = dense(x, v["4x4/Dense1/weight"], v["4x4/Dense1/bias"], 1.0)
    if labels is not None:
        scores = np.sum(scores * _f64(labels), axis=1, keepdims=True)
    return scores
