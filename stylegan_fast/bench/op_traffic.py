"""Memory traffic of every op's Triton plans at every StyleGAN plane size, against its minimum.

Each op runs with ``impl="triton"`` on CPU tensors posing as CUDA (:func:`traffic.
posing_as_cuda`), so the launchers choose the plans an H100 would run, and the Triton
interpreter counts what each launch loads and stores (:func:`traffic.count_traffic`). The
aten ops an op's implementation dispatches besides its kernels (a ``contiguous`` copy, the
eager reference that serves second order) are counted by :class:`dispatch.DispatchCounter`,
their bytes estimated as inputs read once plus outputs written once.

Three passes per op: ``fwd`` (the op call), ``bwd`` (``torch.autograd.grad`` of the output
with an incoming gradient, for every differentiable input) and ``r1`` (the R1 pattern:
``g = grad(out.sum(), x, create_graph=True)``, then ``(out.square().mean() +
g.square().sum()).backward()``; aten ops of the pattern itself are not counted, only those
our ops' code dispatches).

Shapes (``SHAPES``): the plans depend on the plane size ``H x W`` and the layout, not on
``N * C``, which only sets how many tiles there are; the interpreter's time grows with it
(~2 ms a program), so each plane runs with few planes. NCHW ``N=2, C=2``: two samples, so the
batch sums of the parameter gradients and per-sample noise are exercised. channels_last
``N=2, C=16``: 16 channels is the plane-norm kernels' contiguous channel block, so their
channels_last tiles are full. upsample2d / downsample2d take ``N=1`` (their GPU tiles are
small, so they are the slowest to interpret). Caveat: grids that are sized to fill 132 SMs
(the reductions of bias_act and noise_injection, upfirdn2d's row bands) split further with
few planes than a real layer's would: the partial sums and band halos measured here are
upper bounds for real layers.

The minimum of a pass (``MINIMUM``): every input read once and every output written once, as
bytes of the tensors the op's API takes and returns (the kernels' own statistics, e.g. the
plane mean and rstd, are extra). ``MODELS`` is the expected traffic of each plan, written
from the plans' documentation, one row with its reason per op, pass and plan kind;
:func:`check` compares a measurement with it (tests/bench/test_traffic.py does, one case per
plan kind). When a plan changes, ``python benchmarks/traffic.py`` regenerates
``benchmarks/results/traffic.md`` and lists every case that departs from its row: change the
row, and its reason, once the new traffic is the intended one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from . import dispatch, traffic

PLANES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
PASSES = ("fwd", "bwd", "r1")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
LAYOUTS = ("nchw", "cl")
# (N, C) by layout, and for the two resampling ops (see the module docstring).
SHAPES = {"nchw": (2, 2), "cl": (2, 16)}
RESAMPLING_SHAPES = {"nchw": (1, 2), "cl": (1, 16)}


def _nbytes(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


# ---------------------------------------------------------------------------------------------
# The ops: inputs, call, and which tensors are "big" (activation-sized)


@dataclasses.dataclass
class Inputs:
    """An op's inputs by name; ``grad``: the names differentiated in bwd and R1."""

    tensors: dict[str, torch.Tensor]
    grad: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """How to run one op. ``make(n, c, h, dtype, fmt, generator)`` -> :class:`Inputs` for a
    plane of ``h x h`` (upsample2d: the output plane; its input is half the size);
    ``call(tensors)`` -> the output. ``planes``: the plane sizes at which StyleGAN runs it."""

    name: str
    make: Callable[..., Inputs]
    call: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    planes: tuple[int, ...] = PLANES


def _rand(generator, *size, dtype, fmt=torch.contiguous_format, offset=0.0, grad=False):
    t = (offset + torch.randn(*size, generator=generator)).to(dtype=dtype, memory_format=fmt)
    return t.requires_grad_(grad)


def _make_bias_act(n, c, h, dtype, fmt, g):
    x = _rand(g, n, c, h, h, dtype=dtype, fmt=fmt, grad=True)
    return Inputs({"x": x, "b": _rand(g, c, dtype=dtype, grad=True)}, ("x", "b"))


def _make_noise_injection(n, c, h, dtype, fmt, g):
    x = _rand(g, n, c, h, h, dtype=dtype, fmt=fmt, grad=True)
    noise = _rand(g, n, 1, h, h, dtype=dtype)  # drawn, not learned: no gradient
    strength = _rand(g, c, dtype=dtype, grad=True)
    return Inputs({"x": x, "noise": noise, "strength": strength}, ("x", "strength"))


def _make_adain(n, c, h, dtype, fmt, g):
    x = _rand(g, n, c, h, h, dtype=dtype, fmt=fmt, grad=True)
    scale = _rand(g, n, c, dtype=dtype, offset=1.0, grad=True)
    bias = _rand(g, n, c, dtype=dtype, grad=True)
    return Inputs({"x": x, "scale": scale, "bias": bias}, ("x", "scale", "bias"))


def _make_layer_epilogue(n, c, h, dtype, fmt, g):
    tensors = {
        "x": _rand(g, n, c, h, h, dtype=dtype, fmt=fmt, grad=True),
        "noise": _rand(g, n, 1, h, h, dtype=dtype),
        "noise_strength": _rand(g, c, dtype=dtype, grad=True),
        "bias": _rand(g, c, dtype=dtype, grad=True),
        "scale": _rand(g, n, c, dtype=dtype, offset=1.0, grad=True),
        "style_bias": _rand(g, n, c, dtype=dtype, grad=True),
    }
    names = ("x", "noise_strength", "bias", "scale", "style_bias")
    return Inputs(tensors, names)


def _make_upsample(n, c, h, dtype, fmt, g):
    return Inputs({"x": _rand(g, n, c, h // 2, h // 2, dtype=dtype, fmt=fmt, grad=True)}, ("x",))


def _make_downsample(n, c, h, dtype, fmt, g):
    return Inputs({"x": _rand(g, n, c, h, h, dtype=dtype, fmt=fmt, grad=True)}, ("x",))


_BLUR: list[torch.Tensor] = []


def _blur() -> torch.Tensor:
    """StyleGAN's [1, 3, 3, 1] filter (made once: setup_filter dispatches ops of its own)."""
    if not _BLUR:
        from ..ops import setup_filter

        _BLUR.append(setup_filter([1, 3, 3, 1]))
    return _BLUR[0]


def _ops() -> dict[str, OpSpec]:
    from .. import ops

    return {
        spec.name: spec
        for spec in (
            OpSpec(
                "bias_act",
                _make_bias_act,
                lambda t: ops.bias_act(t["x"], t["b"], act="lrelu", impl="triton"),
            ),
            OpSpec(
                "noise_injection",
                _make_noise_injection,
                lambda t: ops.noise_injection(t["x"], t["noise"], t["strength"], impl="triton"),
            ),
            OpSpec(
                "adain",
                _make_adain,
                lambda t: ops.adain(t["x"], t["scale"], t["bias"], impl="triton"),
            ),
            OpSpec(
                "layer_epilogue",
                _make_layer_epilogue,
                lambda t: ops.layer_epilogue(
                    t["x"],
                    t["noise"],
                    t["noise_strength"],
                    t["bias"],
                    t["scale"],
                    t["style_bias"],
                    impl="triton",
                ),  # fmt: skip
            ),
            # Labelled by the larger plane of each (StyleGAN: G upsamples 4->8 ... 512->1024,
            # D downsamples 1024->512 ... 8->4), so neither has a 4x4 row.
            OpSpec(
                "upsample2d",
                _make_upsample,
                lambda t: ops.upsample2d(t["x"], _blur(), impl="triton"),
                PLANES[1:],
            ),
            OpSpec(
                "downsample2d",
                _make_downsample,
                lambda t: ops.downsample2d(t["x"], _blur(), impl="triton"),
                PLANES[1:],
            ),
        )
    }


OPS = ("bias_act", "noise_injection", "adain", "layer_epilogue", "upsample2d", "downsample2d")
RESAMPLING = ("upsample2d", "downsample2d")


# ---------------------------------------------------------------------------------------------
# Minimums


@dataclasses.dataclass(frozen=True)
class Minimum:
    """Minimum bytes of each pass, as coefficients of the tensors' sizes: ``X`` the input x,
    ``Y`` the output y, ``Z`` the noise plane(s), ``P`` every parameter input together (bias,
    strengths, styles).

    ``r1``: the passes autograd makes for the R1 pattern on this op, each at its minimum (big
    tensors X, Y, Z only): the forward; the first backward (``create_graph``; its incoming
    gradient, the ones of ``out.sum()``, counted as read); the backward of the forward again,
    for the loss on ``out``; and, when ``g`` depends on x through the op, the backward of the
    first backward (its second-order term) for the loss on ``g``. For the linear ops g is a
    constant and that pass does not run here; inside a network (R1 through D), where the
    first backward's incoming gradient depends on x, it does, and costs one more forward.
    """

    fwd: dict[str, int]
    bwd: dict[str, int]
    r1: dict[str, int]
    r1_reason: str

    def bytes(self, pass_name: str, sizes: dict[str, int]) -> int:
        return sum(k * sizes[symbol] for symbol, k in getattr(self, pass_name).items())

    def formula(self, pass_name: str) -> str:
        terms = getattr(self, pass_name).items()
        return " + ".join(f"{k if k != 1 else ''}{symbol}" for symbol, k in terms)


MINIMUM = {
    "bias_act": Minimum(
        fwd=dict(X=2, P=1),  # read x, b; write y
        bwd=dict(X=3, P=2),  # read dy, x, b; write dx, db
        r1=dict(X=11),
        r1_reason="fwd 2X, two backwards 3X each, and the second-order pass 3X (lrelu'' = 0: "
        "the backward of the backward is the backward again, reading ggx and x, writing "
        "grad dy)",
    ),
    "noise_injection": Minimum(
        fwd=dict(X=2, Z=1, P=1),  # read x, noise, strength; write y
        bwd=dict(X=1, Z=1, P=2),  # dx is dy itself; read dy, noise, strength; write dstrength
        r1=dict(X=4, Z=3),
        r1_reason="fwd 2X + Z and two backwards X + Z each (dx = dy costs nothing; dstrength "
        "reads dy and noise); g = dy does not depend on x: no second-order pass",
    ),
    "adain": Minimum(
        fwd=dict(X=2, P=1),  # read x, scale, bias; write y
        bwd=dict(X=3, P=2),  # read dy, x, scale; write dx, dscale, dbias
        r1=dict(X=13),
        r1_reason="fwd 2X, two backwards 3X each, and the second-order pass 5X (read ggx, dy, "
        "x; write grad dy, grad x)",
    ),
    "layer_epilogue": Minimum(
        fwd=dict(X=2, Z=1, P=1),  # read x, noise, parameters; write y
        bwd=dict(X=3, Z=1, P=2),  # read dy, x, noise, parameters; write dx, their gradients
        r1=dict(X=13, Z=4),
        r1_reason="as adain, each of the four passes also reading the noise plane once",
    ),
    "upsample2d": Minimum(
        fwd=dict(X=1, Y=1),  # read x, write y (Y = 4X)
        bwd=dict(X=1, Y=1),  # read dy, write dx
        r1=dict(X=3, Y=3),
        r1_reason="linear: fwd and two backwards, X + Y each (g is constant: no second-order "
        "pass here; in a network it is a fourth X + Y)",
    ),
    "downsample2d": Minimum(
        fwd=dict(X=1, Y=1),  # read x, write y (Y = X/4)
        bwd=dict(X=1, Y=1),  # read dy, write dx
        r1=dict(X=3, Y=3),
        r1_reason="as upsample2d",
    ),
}


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclasses.dataclass
class PassTraffic:
    """One pass of one case: Triton launches and bytes, the aten ops our code dispatched, and
    the bytes of each named big tensor (x, noise, y, dy, dx) as multiples of its size."""

    launches: list[tuple[str, tuple[int, int, int]]]
    loaded: int
    stored: int
    loaded_unique: int
    stored_unique: int
    unknown: int  # bytes at addresses outside every tensor argument: a kernel bug
    aten_kernels: list[str]
    aten_bytes: int
    tensors: dict[str, dict[str, float]]  # name -> {loaded, stored, loaded_unique, ...} / size
    minimum: int

    @property
    def moved(self) -> int:
        return self.loaded + self.stored

    @property
    def moved_unique(self) -> int:
        return self.loaded_unique + self.stored_unique

    @property
    def ratio(self) -> float:
        return self.moved / self.minimum

    @property
    def ratio_unique(self) -> float:
        return self.moved_unique / self.minimum

    @property
    def ratio_total(self) -> float:
        """Triton bytes plus the estimated bytes of our code's aten ops, over the minimum."""
        return (self.moved + self.aten_bytes) / self.minimum


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    plane: int
    layout: str
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.op} {self.plane}² {self.layout} {self.dtype}"


def _pass(trace, counter, named: dict[str, torch.Tensor], minimum: int) -> PassTraffic:
    tensors = {}
    for name, t in named.items():
        size = _nbytes(t)
        if t is None or size == 0:
            continue
        tensors[name] = {k: v / size for k, v in trace.by_storage(t).items()}
    own = counter.aten_kernels(origin="package")
    return PassTraffic(
        launches=[(launch.short_name, launch.grid) for launch in trace.launches],
        loaded=trace.loaded,
        stored=trace.stored,
        loaded_unique=trace.loaded_unique,
        stored_unique=trace.stored_unique,
        unknown=sum(launch.unknown_loaded + launch.unknown_stored for launch in trace.launches),
        aten_kernels=[c.name.removeprefix("aten::") for c in own],
        aten_bytes=sum(c.bytes for c in own),
        tensors=tensors,
        minimum=minimum,
    )


def measure(case: Case, passes=PASSES, seed: int = 0) -> dict[str, PassTraffic]:
    """Runs ``case``'s passes with the GPU plans under the interpreter and counts them."""
    spec = _ops()[case.op]
    fmt = torch.channels_last if case.layout == "cl" else torch.contiguous_format
    dtype = DTYPES[case.dtype]
    n, c = (RESAMPLING_SHAPES if case.op in RESAMPLING else SHAPES)[case.layout]
    generator = torch.Generator().manual_seed(seed)
    results = {}
    with traffic.posing_as_cuda(), dispatch.outputs_not_poisoned():
        inputs = spec.make(n, c, case.plane, dtype, fmt, generator)
        t = inputs.tensors
        x, noise = t["x"], t.get("noise")
        wanted = [t[name] for name in inputs.grad]
        if case.op in RESAMPLING:
            _blur()  # made before counting: setup_filter dispatches aten ops of its own
        counted = {}  # pass -> (trace, counter, named tensors)
        y = None
        if "fwd" in passes:
            with dispatch.DispatchCounter(enter_custom_ops=True) as counter:
                with traffic.count_traffic() as trace:
                    y = spec.call(t)
            counted["fwd"] = (trace, counter, dict(x=x, noise=noise, y=y))
        if "bwd" in passes:
            if y is None:
                y = spec.call(t)
            # The forward's graph serves the backward: nothing is run twice.
            dy = torch.randn(y.shape, generator=generator).to(dtype=dtype, memory_format=fmt)
            with dispatch.DispatchCounter(enter_custom_ops=True) as counter:
                with traffic.count_traffic() as trace:
                    grads = torch.autograd.grad(y, wanted, dy)
            named = dict(x=x, noise=noise, dy=dy, dx=grads[0])
            if grads[0].untyped_storage().data_ptr() == dy.untyped_storage().data_ptr():
                del named["dx"]  # dx is dy itself (noise_injection): no traffic of its own
            counted["bwd"] = (trace, counter, named)
        if "r1" in passes:
            with dispatch.DispatchCounter(enter_custom_ops=True) as counter:
                with traffic.count_traffic() as trace:
                    out = spec.call(t)
                    (g,) = torch.autograd.grad(out.sum(), [x], create_graph=True)
                    (out.square().mean() + g.square().sum()).backward()
            for v in wanted:
                v.grad = None
            y = out if y is None else y
            counted["r1"] = (trace, counter, dict(x=x))
        params = [v for k, v in t.items() if k not in ("x", "noise")]
        sizes = dict(X=_nbytes(x), Y=_nbytes(y), Z=_nbytes(noise), P=sum(map(_nbytes, params)))
        for pass_name, (trace, counter, named) in counted.items():
            minimum = MINIMUM[case.op].bytes(pass_name, sizes)
            results[pass_name] = _pass(trace, counter, named, minimum)
    return results


# ---------------------------------------------------------------------------------------------
# The expected traffic of each plan


@dataclasses.dataclass(frozen=True)
class Model:
    """The traffic a plan should make, per op and pass, for planes ``lo <= H <= hi`` in
    ``layout`` ("any" for both).

    ``launches``: Triton launches per call. ``reads`` / ``writes``: per big tensor, the unique
    bytes summed over the launches, in units of the tensor's size (a second pass over x reads
    it again: 2). ``accessed``: per read tensor, bounds on every-access bytes over unique
    bytes (1 when each launch reads each element once; the upfirdn2d column shifts and band
    halos, the plane-norm backward's reload are re-reads a GPU serves from L1/L2). ``aten``:
    kernels our code dispatches besides the Triton ones. ``reason``: why, in one line.
    """

    op: str
    passes: str
    layout: str
    lo: int
    hi: int
    launches: int
    reads: dict[str, float]
    writes: dict[str, float]
    reason: str
    accessed: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    aten: int | None = 0  # None: not modelled (the eager reference's second order)

    def matches(self, case: Case, pass_name: str) -> bool:
        return (
            self.op == case.op
            and pass_name in self.passes.split("+")
            and self.layout in ("any", case.layout)
            and self.lo <= case.plane <= self.hi
        )


# Plane limits of the plans, from the launchers' documentation (``ops/_plane_norm``, GPU
# plans for float32/float16): whole planes in one program's registers up to 64x64 NCHW (the
# backward 32x32) and 16x16 channels_last (the backward 8x8); the sweep plan (one program a
# plane, two sweeps in register-sized sub-tiles, the second served from L2) up to 128x128 NCHW
# and 32x32 channels_last; the split plan above. Regenerate traffic.md and revisit these rows
# when plans move.
_ALL = (4, 1024)
_NCHW_FWD_WHOLE, _NCHW_BWD_WHOLE, _NCHW_FWD_SWEEP, _NCHW_BWD_SWEEP = (
    (4, 64),
    (4, 32),
    (128, 128),
    (64, 128),
)
_CL_FWD_WHOLE, _CL_BWD_WHOLE, _CL_FWD_SWEEP, _CL_BWD_SWEEP = (4, 16), (4, 8), (32, 32), (16, 32)
_NCHW_ONE_PASS = (4, 128)  # whole or sweep: one launch per pass
_NCHW_SPLIT = (256, 1024)
_CL_ONE_PASS = (4, 32)
_CL_SPLIT = (64, 1024)
# upfirdn2d [1, 3, 3, 1] (4 taps) x2: each input element is loaded once per column shift that
# covers it (upsample 3 shifts, downsample 2 of 4 at stride 2, fewer at the image edges) and
# once more per band halo (at most 3/16 for upsample, 2/16 for downsample: bands of >= 16 base
# rows re-read their window rows); the GPU serves the repeats from L1/L2.
_UP_SHIFTS = (2.5, 3.0 * (1 + 3 / 16))
_DOWN_SHIFTS = (1.75, 2.0 * (1 + 2 / 16))
_ONCE = (1.0, 1.0)
_RELOAD = (2.0, 2.0)

MODELS: list[Model] = [
    # bias_act ----------------------------------------------------------------------------
    Model("bias_act", "fwd", "any", *_ALL, 1, {"x": 1}, {"y": 1},
          "one pass: read x, write y", {"x": _ONCE}),
    Model("bias_act", "bwd", "nchw", *_ALL, 2, {"x": 1, "dy": 1}, {"dx": 1},
          "one pass over x and dy; db's partial sums (a row per program, N*C planes) added "
          "by a second launch", {"x": _ONCE, "dy": _ONCE}),
    Model("bias_act", "bwd", "cl", 4, 8, 1, {"x": 1, "dy": 1}, {"dx": 1},
          "channels in the columns and N*H*W rows in one tile (N*H*W*C <= 4096): the single "
          "row of partial sums is db, no second launch", {"x": _ONCE, "dy": _ONCE}),
    Model("bias_act", "bwd", "cl", 16, 1024, 2, {"x": 1, "dy": 1}, {"dx": 1},
          "several row tiles: db's partial sums added by a second launch",
          {"x": _ONCE, "dy": _ONCE}),
    Model("bias_act", "r1", "nchw", *_ALL, 6, {"x": 4}, {},
          "fwd (1) + first backward (2) + second-order pass (1: the backward again, no db) + "
          "backward for the loss on out (2); aten: the contiguous copy of out.sum()'s broadcast "
          "ones (db gets no gradient here, and none is materialised: registration.py)", aten=1),
    Model("bias_act", "r1", "cl", 4, 8, 4, {"x": 4}, {},
          "as NCHW, every backward in one launch (see bwd); aten: as NCHW, and a "
          "channels_last copy of the loss's gradient (autograd's mean/pow backward returns it "
          "NCHW-contiguous, the kernel works in x's layout)", aten=2),
    Model("bias_act", "r1", "cl", 16, 1024, 6, {"x": 4}, {}, "as NCHW; aten as above", aten=2),
    # noise_injection ---------------------------------------------------------------------
    Model("noise_injection", "fwd", "any", *_ALL, 1, {"x": 1, "noise": 1}, {"y": 1},
          "one pass: read x and the noise plane, write y (one channel block holds all C "
          "channels here, so each noise row is loaded once)", {"x": _ONCE, "noise": _ONCE}),
    Model("noise_injection", "bwd", "nchw", *_ALL, 2, {"dy": 1, "noise": 1}, {},
          "dx is dy itself; one pass over dy for dstrength, whose per-(sample, pixel block) "
          "partials a second launch adds", {"dy": _ONCE, "noise": _ONCE}),
    Model("noise_injection", "bwd", "cl", 4, 8, 1, {"dy": 1, "noise": 1}, {},
          "the N*H*W pixel rows fit one tile: the partials are dstrength",
          {"dy": _ONCE, "noise": _ONCE}),
    Model("noise_injection", "bwd", "cl", 16, 1024, 2, {"dy": 1, "noise": 1}, {},
          "several pixel tiles: partials added by a second launch", {"dy": _ONCE}),
    Model("noise_injection", "r1", "any", *_ALL, 5, {"x": 1}, {},
          "fwd (1) + two backwards (2 each: out.sum()'s ones are NCHW-contiguous, so the "
          "first one takes the NCHW plan); aten: the contiguous copy of those ones", aten=1),
    # adain -------------------------------------------------------------------------------
    Model("adain", "fwd", "nchw", *_NCHW_FWD_WHOLE, 1, {"x": 1}, {"y": 1},
          "whole planes: the plane fits a program; read x, write y", {"x": _ONCE}),
    Model("adain", "fwd", "nchw", *_NCHW_FWD_SWEEP, 1, {"x": 1}, {"y": 1},
          "sweep: one program a plane reads it twice in sub-tiles (statistics, then output); "
          "the second read hits L2 on a GPU", {"x": _RELOAD}),
    Model("adain", "fwd", "cl", *_CL_FWD_WHOLE, 1, {"x": 1}, {"y": 1},
          "whole planes (16 channels x the plane per program)", {"x": _ONCE}),
    Model("adain", "fwd", "cl", *_CL_FWD_SWEEP, 1, {"x": 1}, {"y": 1}, "sweep, as NCHW",
          {"x": _RELOAD}),
    Model("adain", "fwd", "nchw", *_NCHW_SPLIT, 3, {"x": 2}, {"y": 1},
          "split: chunk statistics (read x), finalize, apply (read x again, write y)",
          {"x": _ONCE}),
    Model("adain", "fwd", "cl", *_CL_SPLIT, 3, {"x": 2}, {"y": 1}, "split, as NCHW",
          {"x": _ONCE}),
    Model("adain", "bwd", "nchw", *_NCHW_BWD_WHOLE, 1, {"x": 1, "dy": 1}, {"dx": 1},
          "whole planes: read x and dy, write dx", {"x": _ONCE, "dy": _ONCE}),
    Model("adain", "bwd", "nchw", *_NCHW_BWD_SWEEP, 1, {"x": 1, "dy": 1}, {"dx": 1},
          "sweep: x and dy read again after the plane sums (from L2 on a GPU)",
          {"x": _RELOAD, "dy": _RELOAD}),
    Model("adain", "bwd", "cl", *_CL_BWD_WHOLE, 1, {"x": 1, "dy": 1}, {"dx": 1},
          "whole planes (8 channels x the plane per program)", {"x": _ONCE, "dy": _ONCE}),
    Model("adain", "bwd", "cl", *_CL_BWD_SWEEP, 1, {"x": 1, "dy": 1}, {"dx": 1},
          "sweep, as NCHW", {"x": _RELOAD, "dy": _RELOAD}),
    Model("adain", "bwd", "nchw", *_NCHW_SPLIT, 3, {"x": 2, "dy": 2}, {"dx": 1},
          "split: chunk sums (read x, dy), finalize, apply (read x, dy again, write dx)",
          {"x": _ONCE, "dy": _ONCE}),
    Model("adain", "bwd", "cl", *_CL_SPLIT, 3, {"x": 2, "dy": 2}, {"dx": 1}, "split, as NCHW",
          {"x": _ONCE, "dy": _ONCE}),
    Model("adain", "r1", "nchw", *_NCHW_ONE_PASS, 3, {"x": 3}, {},
          "fwd + two backwards, one launch each; the second-order pass is the eager reference "
          "differentiated twice (the aten kernels; their number is not modelled)", aten=None),
    Model("adain", "r1", "cl", *_CL_ONE_PASS, 3, {"x": 3}, {}, "as NCHW", aten=None),
    Model("adain", "r1", "nchw", *_NCHW_SPLIT, 9, {"x": 6}, {},
          "fwd + two backwards, three launches each, x read twice by each; second order: "
          "the reference", aten=None),
    Model("adain", "r1", "cl", *_CL_SPLIT, 9, {"x": 6}, {}, "as NCHW", aten=None),
    # layer_epilogue ----------------------------------------------------------------------
    Model("layer_epilogue", "fwd", "nchw", *_NCHW_FWD_WHOLE, 1, {"x": 1, "noise": 1},
          {"y": 1}, "whole planes; each plane (channel) of a sample loads its noise row (C "
          "loads, L2 hits after the first)", {"x": _ONCE, "noise": (1, 16)}),
    Model("layer_epilogue", "fwd", "nchw", *_NCHW_FWD_SWEEP, 1, {"x": 1, "noise": 1},
          {"y": 1}, "sweep (see adain): x and the noise rows read twice, the second time from "
          "L2", {"x": _RELOAD, "noise": (2, 32)}),
    Model("layer_epilogue", "fwd", "cl", *_CL_FWD_WHOLE, 1, {"x": 1, "noise": 1}, {"y": 1},
          "whole planes, as NCHW", {"x": _ONCE, "noise": (1, 16)}),
    Model("layer_epilogue", "fwd", "cl", *_CL_FWD_SWEEP, 1, {"x": 1, "noise": 1}, {"y": 1},
          "sweep, as NCHW", {"x": _RELOAD, "noise": (2, 32)}),
    Model("layer_epilogue", "fwd", "nchw", *_NCHW_SPLIT, 3, {"x": 2, "noise": 2}, {"y": 1},
          "split: statistics (read x, noise), finalize, apply (read both again, write y)",
          {"x": _ONCE}),
    Model("layer_epilogue", "fwd", "cl", *_CL_SPLIT, 3, {"x": 2, "noise": 2}, {"y": 1},
          "split, as NCHW", {"x": _ONCE}),
    Model("layer_epilogue", "bwd", "nchw", *_NCHW_BWD_WHOLE, 2, {"x": 1, "dy": 1, "noise": 1},
          {"dx": 1}, "whole planes (read x, dy, noise; write dx) + the ordered batch sum of "
          "the dbias / dnoise_strength partials", {"x": _ONCE, "dy": _ONCE}),
    Model("layer_epilogue", "bwd", "nchw", *_NCHW_BWD_SWEEP, 2, {"x": 1, "dy": 1, "noise": 1},
          {"dx": 1}, "sweep (see adain) + the batch sum", {"x": _RELOAD, "dy": _RELOAD}),
    Model("layer_epilogue", "bwd", "cl", *_CL_BWD_WHOLE, 2, {"x": 1, "dy": 1, "noise": 1},
          {"dx": 1}, "whole planes + the batch sum", {"x": _ONCE, "dy": _ONCE}),
    Model("layer_epilogue", "bwd", "cl", *_CL_BWD_SWEEP, 2, {"x": 1, "dy": 1, "noise": 1},
          {"dx": 1}, "sweep + the batch sum", {"x": _RELOAD, "dy": _RELOAD}),
    Model("layer_epilogue", "bwd", "nchw", *_NCHW_SPLIT, 4, {"x": 2, "dy": 2, "noise": 2},
          {"dx": 1}, "split (chunk sums, finalize, apply: x, dy, noise read twice) + the "
          "batch sum", {"x": _ONCE, "dy": _ONCE}),
    Model("layer_epilogue", "bwd", "cl", *_CL_SPLIT, 4, {"x": 2, "dy": 2, "noise": 2},
          {"dx": 1}, "split, as NCHW", {"x": _ONCE, "dy": _ONCE}),
    Model("layer_epilogue", "r1", "nchw", *_NCHW_ONE_PASS, 5, {"x": 3}, {},
          "fwd (1) + two backwards (2 each); second order: the eager reference (the aten "
          "kernels)", aten=None),
    Model("layer_epilogue", "r1", "cl", *_CL_ONE_PASS, 5, {"x": 3}, {}, "as NCHW", aten=None),
    Model("layer_epilogue", "r1", "nchw", *_NCHW_SPLIT, 11, {"x": 6}, {},
          "fwd (3) + two backwards (4 each); second order: the reference", aten=None),
    Model("layer_epilogue", "r1", "cl", *_CL_SPLIT, 11, {"x": 6}, {}, "as NCHW", aten=None),
    # upfirdn2d ---------------------------------------------------------------------------
    Model("upsample2d", "fwd", "any", *_ALL, 1, {"x": 1}, {"y": 1},
          "one polyphase pass: x once from DRAM (column shifts and band halos from cache), "
          "y once", {"x": _UP_SHIFTS}),
    Model("upsample2d", "bwd", "any", *_ALL, 1, {"dy": 1}, {"dx": 1},
          "the adjoint is a x2 downsample of dy: one pass", {"dy": _DOWN_SHIFTS}),
    Model("upsample2d", "r1", "any", *_ALL, 3, {"x": 1}, {},
          "fwd + two backwards (g is constant: no second-order launch); aten: the contiguous "
          "copy of out.sum()'s broadcast ones", aten=1),
    Model("downsample2d", "fwd", "any", *_ALL, 1, {"x": 1}, {"y": 1},
          "one polyphase pass", {"x": _DOWN_SHIFTS}),
    Model("downsample2d", "bwd", "any", *_ALL, 1, {"dy": 1}, {"dx": 1},
          "the adjoint is a x2 upsample of dy: one pass", {"dy": _UP_SHIFTS}),
    Model("downsample2d", "r1", "any", *_ALL, 3, {"x": 1}, {}, "as upsample2d", aten=1),
]  # fmt: skip


def model_for(case: Case, pass_name: str) -> Model | None:
    return next((m for m in MODELS if m.matches(case, pass_name)), None)


# Tolerances of :func:`check`: unique bytes are exact up to masked edges (1 %); every-access
# bounds are the model's own.
UNIQUE_TOLERANCE = 0.01


def check(case: Case, pass_name: str, measured: PassTraffic) -> list[str]:
    """How ``measured`` departs from its model (empty: it matches; no model: one line)."""
    model = model_for(case, pass_name)
    if model is None:
        return [f"{case.label} {pass_name}: no model row"]
    problems = []
    where = f"{case.label} {pass_name}"
    if len(measured.launches) != model.launches:
        problems.append(f"{where}: {len(measured.launches)} launches, model {model.launches}")
    if model.aten is not None and len(measured.aten_kernels) != model.aten:
        problems.append(
            f"{where}: {len(measured.aten_kernels)} aten kernels {measured.aten_kernels}, "
            f"model {model.aten}"
        )
    if measured.unknown:
        problems.append(f"{where}: {measured.unknown} bytes outside every tensor argument")
    for kind, expected in (("loaded", model.reads), ("stored", model.writes)):
        for name, value in expected.items():
            got = measured.tensors.get(name, {}).get(f"{kind}_unique", 0.0)
            if abs(got - value) > UNIQUE_TOLERANCE * max(value, 1):
                problems.append(f"{where}: {name} {kind} {got:.3f}x unique, model {value}x")
    for name, stats in measured.tensors.items():
        if stats.get("stored", 0.0) > stats.get("stored_unique", 0.0) + 1e-9:
            problems.append(f"{where}: {name} written more than once")
    for name, (lo, hi) in model.accessed.items():
        stats = measured.tensors.get(name, {})
        unique = stats.get("loaded_unique", 0.0)
        factor = stats.get("loaded", 0.0) / unique if unique else 0.0
        if not lo - 1e-9 <= factor <= hi + 1e-9:
            problems.append(
                f"{where}: {name} accessed {factor:.3f}x its unique bytes, model {lo}-{hi}"
            )
    return problems


def cases(ops=OPS, planes=PLANES, layouts=LAYOUTS, dtypes=tuple(DTYPES)) -> list[Case]:
    specs = _ops()
    return [
        Case(op, plane, layout, dtype)
        for op in ops
        for plane in planes
        if plane in specs[op].planes
        for layout in layouts
        for dtype in dtypes
    ]


# ---------------------------------------------------------------------------------------------
# The sweep and its report

# The largest plane each (layout, dtype) runs at by default, and R1's: the interpreter's time
# grows with the plane (~10 s for a 1024² fwd + bwd, channels_last ~4x that per plane), and
# these limits reach every plan kind in both dtypes (channels_last's split plan starts at
# 64²) in ~7 minutes on 2 cores. ``--full`` runs everything (well over an hour).
DEFAULT_LIMITS = {("nchw", "fp32"): 1024, ("nchw", "fp16"): 512, ("cl", "fp32"): 128}
DEFAULT_LIMITS[("cl", "fp16")] = 64
R1_MAX_PLANE = 1024


@dataclasses.dataclass
class Result:
    case: Case
    passes: dict[str, PassTraffic]
    seconds: float
    error: str = ""  # why the case could not be measured (the report lists it)


def default_sweep(full: bool = False, ops=OPS) -> list[tuple[Case, tuple[str, ...]]]:
    """The cases ``benchmarks/traffic.py`` measures, each with its passes."""
    sweep = []
    for case in cases(ops):
        limit = 1024 if full else DEFAULT_LIMITS.get((case.layout, case.dtype), 0)
        if case.plane > limit:
            continue
        passes = PASSES if full or case.plane <= R1_MAX_PLANE else ("fwd", "bwd")
        sweep.append((case, passes))
    return sweep


def run(sweep, progress: Callable[[str], None] | None = None) -> list[Result]:
    import time

    results = []
    for case, passes in sweep:
        start = time.perf_counter()
        error = ""
        try:
            measured = measure(case, passes)
        except Exception as exc:  # noqa: BLE001 - reported per case; the sweep goes on
            measured, error = {}, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        seconds = time.perf_counter() - start
        results.append(Result(case, measured, seconds, error))
        if progress is not None:
            progress(f"{case.label}: {seconds:.1f} s" + (f" FAILED {error}" if error else ""))
    return results


def _cell(p: PassTraffic | None, r1: bool = False) -> str:
    if p is None:
        return "–"
    launches = f"{len(p.launches)}"
    if p.aten_kernels:
        launches += f" + {len(p.aten_kernels)} aten"
    if r1:
        return f"{p.ratio:.2f} / {p.ratio_unique:.2f} / {p.ratio_total:.2f} · {launches}"
    return f"{p.ratio:.2f} / {p.ratio_unique:.2f} · {launches}"


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def plan_summary(results: list[Result]) -> list[str]:
    """Markdown rows, one per model row (op, pass, plan kind) that measured cases fall in: the
    planes, the ranges of the ratios, launches, aten kernels, and the row's reason."""
    groups: dict[tuple, list[PassTraffic]] = {}
    planes: dict[tuple, set] = {}
    for r in results:
        for pass_name, p in r.passes.items():
            model = model_for(r.case, pass_name)
            key = (r.case.op, pass_name, MODELS.index(model) if model is not None else -1)
            groups.setdefault(key, []).append(p)
            planes.setdefault(key, set()).add((r.case.plane, r.case.layout))
    rows = []
    for key in sorted(groups, key=lambda k: (OPS.index(k[0]), PASSES.index(k[1]), k[2])):
        op, pass_name, index = key
        members = groups[key]
        sizes = sorted(plane for plane, _ in planes[key])
        layouts = "/".join(sorted({layout for _, layout in planes[key]}))
        launches = "/".join(map(str, sorted({len(p.launches) for p in members})))
        aten = "/".join(map(str, sorted({len(p.aten_kernels) for p in members})))
        reason = MODELS[index].reason if index >= 0 else "no model row"
        where = f"{sizes[0]}²" if sizes[0] == sizes[-1] else f"{sizes[0]}²-{sizes[-1]}²"
        rows.append(
            f"| {op} | {pass_name} | {where} {layouts} | "
            f"{_span([p.ratio for p in members])} | {_span([p.ratio_unique for p in members])} | "
            f"{_span([p.ratio_total for p in members])} | {launches} | {aten} | {reason} |"
        )
    return rows


def mismatches(results: list[Result]) -> list[str]:
    """Every departure of a measured pass from its model row (:func:`check`), and every case
    that failed to run."""
    return [f"{r.case.label}: failed: {r.error}" for r in results if r.error] + [
        line
        for r in results
        for pass_name, p in r.passes.items()
        for line in check(r.case, pass_name, p)
    ]


def markdown(results: list[Result], header: str) -> str:
    """traffic.md: ``header`` (command, date, versions), then the explanation, the minimums,
    the per-op tables, the launch sequences and the model check."""
    out = [header, "", _EXPLANATION, "", "## Minimums", ""]
    out += ["| op | fwd | bwd | R1 floor | R1 floor: why |", "|---|---|---|---|---|"]
    for op in OPS:
        m = MINIMUM[op]
        out.append(
            f"| {op} | {m.formula('fwd')} | {m.formula('bwd')} | {m.formula('r1')} | "
            f"{m.r1_reason} |"
        )
    out += ["", "## By plan", ""]
    out += [
        "Ratios over the cases each model row covers (fp32 and fp16, the planes and layouts "
        "shown): every access ÷ minimum, unique per launch ÷ minimum, and the total with the "
        "estimated bytes of the aten ops our code dispatches. Small planes carry the per-plane "
        "statistics and partial sums, a larger share of a small minimum.",
        "",
        "| op | pass | planes | every access | unique | with aten | Triton launches | aten "
        "kernels | the plan, per its model row |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    out += plan_summary(results)
    problems = mismatches(results)
    checked = sum(len(r.passes) for r in results)
    out += [
        "",
        f"Model check: {checked - len({line.split(':')[0] for line in problems})} of {checked} "
        "measured passes match their row in `op_traffic.MODELS`"
        + (" (mismatches at the end)." if problems else "."),
    ]
    for op in OPS:
        rows = [r for r in results if r.case.op == op]
        if not rows:
            continue
        out += ["", f"## {op}", ""]
        out += [
            "Cells: every-access ÷ minimum / unique-per-launch ÷ minimum · Triton launches "
            "(+ aten kernels our code dispatches); R1 adds the total with those aten ops' "
            "estimated bytes. Model: ✓ all passes match their `MODELS` row.",
            "",
            "| plane | layout | dtype | fwd | bwd | R1 | model |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if r.error:
                out.append(
                    f"| {r.case.plane}² | {r.case.layout} | {r.case.dtype} | failed: "
                    f"{r.error.replace('|', '/')} | | | ✗ |"
                )
                continue
            ok = all(not check(r.case, k, p) for k, p in r.passes.items())
            out.append(
                f"| {r.case.plane}² | {r.case.layout} | {r.case.dtype} | "
                f"{_cell(r.passes.get('fwd'))} | {_cell(r.passes.get('bwd'))} | "
                f"{_cell(r.passes.get('r1'), r1=True)} | {'✓' if ok else '✗'} |"
            )
    out += ["", "## Launch sequences", ""]
    out += [
        "Each distinct sequence of Triton kernels per op and pass, with the planes and "
        "layouts that run it.",
        "",
    ]
    sequences: dict[tuple, list[str]] = {}
    for r in results:
        for pass_name, p in r.passes.items():
            key = (r.case.op, pass_name, tuple(name for name, _ in p.launches))
            where = f"{r.case.plane}² {r.case.layout}"
            sequences.setdefault(key, [])
            if where not in sequences[key]:
                sequences[key].append(where)
    for (op, pass_name, names), where in sequences.items():
        listed = " → ".join(names) if names else "(none)"
        out.append(f"- {op} {pass_name}: {listed} — {', '.join(where)}")
    if problems:
        out += ["", "## Model mismatches", ""]
        out += [f"- {line}" for line in problems]
    return "\n".join(out) + "\n"


_EXPLANATION = """\
## What this measures

Every op runs with `impl="triton"` on CPU tensors that pose as CUDA tensors of an H100 (132
SMs; `stylegan_fast.bench.traffic.posing_as_cuda`), so each launcher picks the plan (tiles,
grid, number of passes) it would pick on the GPU; grids that depend on occupancy use the
launchers' documented default for uncompiled kernels. The Triton interpreter then runs those
kernels and counts, per launch, every byte each load and store touches with masked-off lanes
excluded (`stylegan_fast.bench.traffic.count_traffic`). Two counts:

- **every access**: each active lane of each `tl.load`/`tl.store`. A tile loaded twice counts
  twice, including re-reads that a GPU serves from L1/L2 (upfirdn2d's column shifts and band
  halos, the plane-norm backward's reload of its tile), so for these coalesced kernels it is
  an upper bound on DRAM traffic.
- **unique per launch**: the distinct bytes each launch touches, summed over the launches of
  the call. A launch must fetch each at least once unless an earlier launch left it in L2, so
  this is the compulsory traffic of the plan (a second pass over x counts again).

The ratio is that count ÷ the op's minimum (below: each input read once, each output written
once). aten ops our code dispatches besides the Triton kernels (a `contiguous` copy of a
broadcast gradient, the eager reference that serves adain's and layer_epilogue's second
order) are counted by a `TorchDispatchMode` and shown as "+ n aten"; their bytes are
estimated as inputs read once plus outputs written once and enter only the R1 total. Passes:
fwd is the op call; bwd is `torch.autograd.grad` of the output for every differentiable input
(x and the parameters; not the drawn noise); R1 is `g = grad(out.sum(), x,
create_graph=True)`, then `(out.square().mean() + g.square().sum()).backward()`, whose own aten
ops (the loss) are not counted.

Shapes: plans depend on the plane size and the layout, not on N·C, which only sets the number
of tiles, so each plane runs with few planes (NCHW N=2, C=2; channels_last N=2, C=16, a full
16-channel block of the plane-norm kernels; upsample2d/downsample2d N=1). Grids sized to fill
132 SMs (the bias_act/noise_injection reductions, upfirdn2d's row bands) split further with so
few planes than on a real layer, so their partial sums and halos here are upper bounds.
upsample2d's plane is its output, downsample2d's its input (the larger side of each)."""
