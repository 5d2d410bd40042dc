"""The extension's loading (and refusal), the layout rule, and the generic higher-order
backward through a reference."""

import json
import subprocess
import sys

import pytest
import torch

from stylegan_fast import _library


def test_extension_is_loaded():
    """The suite runs against a built extension: a silent fallback would hide the cpp tests."""
    assert _library.EXTENSION.loaded, _library.EXTENSION.reason
    assert _library.EXTENSION.build_info["torch_version"] == torch.__version__


def test_extension_built_for_another_torch_is_refused(monkeypatch):
    built_for = _library.EXTENSION.build_info["torch_version"]
    monkeypatch.setattr(torch, "__version__", "0.0.1+other")
    status = _library._load_extension()
    assert not status.loaded
    assert f"built against torch {built_for} but torch 0.0.1+other is running" in status.reason
    assert "pip install --no-build-isolation --force-reinstall" in status.reason


def test_extension_can_be_disabled(monkeypatch):
    monkeypatch.setenv("STYLEGAN_FAST_DISABLE_EXTENSION", "1")
    status = _library._load_extension()
    assert not status.loaded and "STYLEGAN_FAST_DISABLE_EXTENSION" in status.reason


def test_package_works_without_extension():
    """With _C disabled the ops run on the reference, warn once, and say why."""
    code = (
        "import warnings, torch, stylegan_fast\n"
        "from stylegan_fast.ops import bias_act\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    y = bias_act(torch.randn(2, 3), torch.randn(3), act='lrelu')\n"
        "    y = bias_act(torch.randn(2, 3), torch.randn(3), act='lrelu')\n"
        "print(len(w), w[0].category.__name__, str(w[0].message))\n"
    )
    env = {"STYLEGAN_FAST_DISABLE_EXTENSION": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(_repo_root()),
        check=True,
    ).stdout
    assert out.startswith("1 FallbackWarning")
    assert "uses impl='ref'" in out and "STYLEGAN_FAST_DISABLE_EXTENSION" in out


def _repo_root():
    import pathlib

    return pathlib.Path(__file__).resolve().parents[1]


def test_build_info_is_json_beside_the_extension():
    import stylegan_fast

    path = _repo_root() / "stylegan_fast" / "_build_info.json"
    installed = __import__("pathlib").Path(stylegan_fast.__file__).with_name("_build_info.json")
    info = json.loads((installed if installed.exists() else path).read_text())
    assert {"torch_version", "with_cuda", "sources"} <= set(info)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: torch.empty(2, 3, 4, 5), torch.contiguous_format),
        (
            lambda: torch.empty(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
            torch.channels_last,
        ),
        (lambda: torch.empty(2, 3, 4, 10)[..., ::2], torch.contiguous_format),
        (
            lambda: torch.empty(2, 1, 4, 5).contiguous(memory_format=torch.channels_last),
            torch.contiguous_format,
        ),  # C = 1: both formats describe the same strides
        (lambda: torch.empty(3, 4), torch.contiguous_format),
    ],
)
def test_kernel_memory_format(make, expected):
    x = make()
    assert _library.kernel_memory_format(x) == expected
    assert _library.empty_like_kernel(x).is_contiguous(memory_format=expected)


def test_reference_backward_of_backward_matches_autograd():
    """The generic second-order rule equals differentiating the function twice."""

    def f(x, w):
        return (x.sin() * w).tanh(), x * w.exp()

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    dy = [torch.randn(3, 4, dtype=torch.float64, generator=g) for _ in range(2)]
    gg = [torch.randn(3, 4, dtype=torch.float64, generator=g) for _ in range(2)]
    got = _library.reference_backward_of_backward(f, (x, w), dy, gg)

    dy_ = [d.clone().requires_grad_() for d in dy]
    first = torch.autograd.grad(f(x, w), (x, w), dy_, create_graph=True)
    want = torch.autograd.grad(first, (*dy_, x, w), gg)
    assert len(got) == 4
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_reference_backward_of_backward_handles_missing_inputs():
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(4, dtype=torch.float64)
    got = _library.reference_backward_of_backward(
        lambda x, b: x.square(), (x, None), (dy,), (torch.ones(4, dtype=torch.float64), None)
    )
    assert got[2] is None  # the absent input gets no gradient
    torch.testing.assert_close(got[0], 2 * x.detach())  # d/d(dy) of <1, 2 x dy>
    torch.testing.assert_close(got[1], 2 * dy)


def test_extension_ops_use_the_cpp_autograd_node():
    """First-order autograd of the _C ops runs in C++ (csrc/autograd.cpp), not through a
    Python kernel that costs ~10x more per call."""
    from stylegan_fast.ops import adain, bias_act, layer_epilogue, noise_injection

    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    per_channel, per_sample = torch.randn(3), torch.randn(2, 3)
    outputs = {
        "BiasAct": bias_act(x, per_channel, act="lrelu", impl="cpp"),
        "NoiseInjection": noise_injection(x, torch.randn(2, 1, 4, 4), per_channel, impl="cpp"),
        "Adain": adain(x, per_sample, per_sample, impl="cpp"),
        "LayerEpilogue": layer_epilogue(
            x, None, per_channel, per_channel, per_sample, per_sample, impl="cpp"
        ),
    }
    for name, y in outputs.items():
        assert y.grad_fn.name().startswith("torch::autograd::CppNode"), y.grad_fn.name()
        assert name in y.grad_fn.name()
