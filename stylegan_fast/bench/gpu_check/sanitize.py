"""Every op forward, backward and R1 through each kernel backend on small inputs: the workload
the GPU check runs under ``compute-sanitizer`` (memcheck: out-of-bounds and misaligned
accesses; racecheck: shared-memory hazards in the reductions).

Shapes reach each plan of the kernels at the smallest size that selects it: one-pass planes
(8x8), the Triton plane-norm sweep plan (96x96 NCHW: one program sweeps a plane twice),
planes the CUDA and Triton adain/layer_epilogue kernels split into chunks (136x136: above
128x128), channels that are not a multiple of the vector width (C = 5), both layouts.
The sanitizer slows kernels 10-100x, so sizes stay small. Results are compared with the
reference in float64 so a kernel that runs clean but computes garbage is caught here too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import ops, testing

SMALL = (2, 5, 8, 8)
SWEPT = (1, 3, 96, 96)
CHUNKED = (1, 3, 136, 136)


def _inputs(shape, device, channels_last: bool, generator: torch.Generator):
    n, c, h, w = shape

    def leaf(*size, fmt=torch.contiguous_format, offset=0.0):
        t = offset + torch.randn(*size, generator=generator, dtype=torch.float64)
        return t.to(device=device, dtype=torch.float32).contiguous(memory_format=fmt)

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return {
        "x": leaf(n, c, h, w, fmt=fmt),
        "noise": leaf(n, 1, h, w),
        "strength": leaf(c),
        "bias": leaf(c),
        "scale": leaf(n, c, offset=1.0),
        "shift": leaf(n, c),
    }


def _cases(filter_: torch.Tensor) -> dict[str, tuple[tuple[str, ...], Callable]]:
    """op label -> (the inputs it differentiates, call(inputs, impl))."""
    return {
        "bias_act": (
            ("x", "bias"),
            lambda t, impl: ops.bias_act(t["x"], t["bias"], act="lrelu", impl=impl),
        ),
        "noise_injection": (
            ("x", "noise", "strength"),
            lambda t, impl: ops.noise_injection(t["x"], t["noise"], t["strength"], impl=impl),
        ),
        "adain": (
            ("x", "scale", "shift"),
            lambda t, impl: ops.adain(t["x"], t["scale"], t["shift"], impl=impl),
        ),
        "layer_epilogue": (
            ("x", "noise", "strength", "bias", "scale", "shift"),
            lambda t, impl: ops.layer_epilogue(
                t["x"], t["noise"], t["strength"], t["bias"], t["scale"], t["shift"], impl=impl
            ),
        ),
        "upsample2d": (("x",), lambda t, impl: ops.upsample2d(t["x"], filter_, impl=impl)),
        "downsample2d": (("x",), lambda t, impl: ops.downsample2d(t["x"], filter_, impl=impl)),
    }


def run(device: torch.device, impls: tuple[str, ...], race_only: bool = False, log=print) -> int:
    """Runs the cases; returns how many (op, impl, shape, layout) cases were checked. Raises
    AssertionError on a wrong result. ``race_only``: the reductions alone (backward passes
    of the ops whose kernels sum through shared memory), for racecheck's slower run."""
    generator = torch.Generator().manual_seed(0)
    filter_ = ops.setup_filter([1, 3, 3, 1], device=device)
    cases = _cases(filter_)
    if race_only:
        cases = {k: v for k, v in cases.items() if k not in ("upsample2d", "downsample2d")}
    count = 0
    for impl in impls:
        for shape in (SMALL, SWEPT, CHUNKED):
            for channels_last in (False, True):
                for name, (wrt, call) in cases.items():
                    if shape is not SMALL and name in ("bias_act", "noise_injection", "upsample2d"):
                        continue  # their plans do not depend on the plane size
                    tensors = _inputs(shape, device, channels_last, generator)
                    _check(name, impl, call, tensors, wrt, r1=not race_only)
                    count += 1
        log(f"sanitize: {impl}: {count} cases checked so far")
    return count


def _check(name, impl, call, tensors, wrt, r1: bool) -> None:
    """Forward and gradients of ``impl`` against the float64 reference (on the CPU); with
    ``r1`` also the R1 pattern's double backward. Each result's relative error (float32:
    below 1e-5 forward, 1e-4 for gradients, 1e-3 for R1's) and finiteness: enough to catch
    the garbage a memory error produces; the element-wise tolerances are the test suite's."""
    order = list(tensors)

    def fn_of(impl_):
        return lambda *values: call(dict(zip(order, values)), impl_)

    inputs = [tensors[k].detach().requires_grad_(k in wrt) for k in order]
    ref_inputs = [t.detach().cpu() for t in testing.to_float64(inputs)]
    ref_inputs = [t.requires_grad_(k in wrt) for k, t in zip(order, ref_inputs)]
    y_ref = fn_of("ref")(*ref_inputs)
    dy = torch.randn(y_ref.shape, dtype=torch.float64)
    y, grads = testing.forward_backward(fn_of(impl), inputs, dy.to(inputs[0].device))
    _, grads_ref = testing.forward_backward(fn_of("ref"), ref_inputs, dy)
    _compare(f"{name} ({impl}) y", y, y_ref, 1e-5)
    for k, g, g_ref in zip(order, grads, grads_ref):
        if k in wrt:
            _compare(f"{name} ({impl}) d{k}", g, g_ref, 1e-4)
    if r1:
        # A random weight on the output stands in for the layers after it in D: R1 of a bare
        # adain would be rounding noise (each plane's sum does not depend on x).
        weight = torch.randn(y_ref.shape, dtype=torch.float64)
        got = testing.r1_pattern(lambda *v: fn_of(impl)(*v) * weight.to(y), inputs)
        want = testing.r1_pattern(lambda *v: fn_of("ref")(*v) * weight, ref_inputs)
        for k, g, g_ref in zip(order, got, want):
            if g_ref is not None:
                _compare(f"{name} ({impl}) R1 d{k}", g, g_ref, 1e-3)


def _compare(what: str, actual: torch.Tensor, expected: torch.Tensor, max_error: float) -> None:
    if not torch.equal(torch.isfinite(actual).cpu(), torch.isfinite(expected)):
        raise AssertionError(f"{what}: non-finite values where the reference has none")
    error = testing.relative_error(actual.cpu(), expected)
    if not error < max_error:
        raise AssertionError(f"{what}: relative error {error:.2e} (limit {max_error:g})")
