"""``stylegan_fast.compat.nvlabs.install()`` and ``stylegan_fast.compat.rosinality.install()``
with client code written the way those code bases write theirs (``tests/compat/clients``):
their files, unchanged, import our ops where theirs would compile CUDA, leave the rest of the
user's package alone, and train the same as plain PyTorch (forward, backward, R1 and path
length, float64); and install() refuses clearly when it cannot work."""

import importlib
import inspect
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension

from stylegan_fast import compat, testing
from stylegan_fast.compat import nvlabs, rosinality

CLIENTS = Path(__file__).parent / "clients"
# Top-level names the client repositories define (purged between loads).
CLIENT_PACKAGES = ("torch_utils", "training", "metrics", "op", "model", "train_functions",
                   "non_leaking")  # fmt: skip


@pytest.fixture
def clean_imports():
    """Restores ``sys.modules``, ``sys.path`` and the gradfix switches after the test, so the
    aliases and the client packages do not leak into other tests."""
    modules, path = dict(sys.modules), list(sys.path)
    gradfix = [nvlabs.conv2d_gradfix, rosinality.conv2d_gradfix]
    switches = [(m.enabled, m.weight_gradients_disabled) for m in gradfix]
    yield
    for name in set(sys.modules) - set(modules):
        del sys.modules[name]
    sys.modules.update(modules)
    sys.path[:] = path
    for module, (enabled, disabled) in zip(gradfix, switches):
        module.enabled, module.weight_gradients_disabled = enabled, disabled


def _repository(tmp_path, style, variant):
    """A client repository in ``tmp_path/<variant>``: the client code plus the op modules of
    ``variant`` ("would_compile" or "plain")."""
    root = tmp_path / variant
    shutil.copytree(CLIENTS / f"{style}_code", root, dirs_exist_ok=True)
    shutil.copytree(CLIENTS / f"{style}_{variant}", root, dirs_exist_ok=True)
    return root


def _load(root, names, install=None):
    """Imports ``names`` from the repository ``root`` (after ``install()`` when given), on a
    clean slate of client packages; returns the modules."""
    for name in list(sys.modules):
        if name.split(".")[0] in CLIENT_PACKAGES:
            del sys.modules[name]
    importlib.invalidate_caches()
    sys.path.insert(0, str(root))
    try:
        if install is not None:
            install()
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(root))


def _to_float64(module):
    """Parameters to float64; filter buffers stay float32, as NVlabs' ops require."""
    for p in module.parameters():
        p.data = p.data.double()
    return module


def _gradients(what, loss, params, prefix):
    """{"<what> d<name>": d loss / d param} for the parameters named ``prefix...`` (zeros
    where the loss does not reach one, e.g. R1 and the last bias)."""
    names = [n for n in params if n.startswith(prefix)]
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    return {
        f"{what} d{n}": (torch.zeros_like(params[n]) if g is None else g).detach()
        for n, g in zip(names, grads)
    }


def _compare(got, want):
    """Every entry within float64 tolerance; most nonzero, so the comparison is not vacuous
    (R1's and path length's gradients of biases feeding piecewise-linear or linear layers are
    exactly zero)."""
    assert list(got) == list(want)
    for name, expected in want.items():
        testing.assert_close(got[name], expected, what=name)
    nonzero = [name for name, expected in want.items() if expected.abs().max() > 0]
    assert len(nonzero) >= 0.85 * len(want), sorted(set(want) - set(nonzero))


# --- NVlabs -----------------------------------------------------------------------------------

NV_MODULES = ["training.networks", "training.networks_stylegan3", "training.loss",
              "training.augment", "training.training_loop", "metrics.equivariance"]  # fmt: skip


def _nvlabs_run(modules, state=None):
    """Builds G, D and a stylegan3 layer (loading ``state`` when given) and runs a training
    step's computations in float64: G forward (fused and not), augment, D, the main loss's
    gradients, R1 on blurred reals, path length, the stylegan3 layer and the metric filter."""
    networks, networks3, loss, augment, training_loop, equivariance = modules
    training_loop.setup()  # conv2d_gradfix.enabled = True, as their training loop sets
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {"G": networks.Generator(), "D": networks.Discriminator(),
         "L3": networks3.SynthesisLayer(w_dim=8, channels=4)}
    )  # fmt: skip
    if state is not None:
        model.load_state_dict(state)  # every name and shape as in the reference
    _to_float64(model)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 8, generator=g, dtype=torch.float64)
    real = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    pl_noise = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64) / 8
    x3 = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    params = dict(model.named_parameters())
    fake = model["G"](z, fused_modconv=True)
    fake_unfused = model["G"](z)  # in training mode: unfused
    logits = model["D"](augment.augment(fake))
    main = torch.nn.functional.softplus(logits).sum() + fake_unfused.square().sum()
    out = {"fake": fake, "fake unfused": fake_unfused, "logits": logits}
    out |= _gradients("main", main, params, ("G.", "D."))
    r1 = loss.r1_loss(model["D"], real, r1_gamma=2.0, blur_sigma=1.0)
    out |= _gradients("R1", r1, params, "D.")
    out |= _gradients("PL", loss.pl_loss(model["G"], z, pl_noise), params, "G.")
    out["L3"] = model["L3"](x3, z)
    out |= _gradients("L3", out["L3"].square().sum(), params, "L3.")
    out["shifted"] = equivariance.fractional_translate_x(real)
    return model.state_dict(), {name: t.detach() for name, t in out.items()}


def test_nvlabs_client_trains_like_plain_torch(tmp_path, clean_imports, monkeypatch):
    """Their files, unchanged, after install(): no op module of theirs is imported (each would
    raise), and every number of a training step equals the plain-PyTorch run's (float64)."""
    monkeypatch.setattr(torch.utils.cpp_extension, "load", _refuse_compiling)
    plain = _load(_repository(tmp_path, "nvlabs", "plain"), NV_MODULES)
    state, want = _nvlabs_run(plain)
    ours = _load(_repository(tmp_path, "nvlabs", "would_compile"), NV_MODULES, nvlabs.install)
    _, got = _nvlabs_run(ours, state)
    assert nvlabs.conv2d_gradfix.enabled  # their training loop switched ours on
    _compare(got, want)
    assert len(want) > 60


def _refuse_compiling(*args, **kwargs):
    raise AssertionError("a CUDA extension build was started")


def test_nvlabs_install_aliases_only_the_three_ops(tmp_path, clean_imports):
    """bias_act, upfirdn2d and conv2d_gradfix are ours however imported; the user's
    persistence, misc and other ops stay theirs, and their ops that import ours get ours."""
    root = _repository(tmp_path, "nvlabs", "would_compile")
    networks, networks3, *_ = _load(root, NV_MODULES, nvlabs.install)
    import torch_utils.ops.conv2d_resample
    import torch_utils.ops.filtered_lrelu
    import torch_utils.persistence

    assert networks.bias_act is nvlabs.bias_act and networks.upfirdn2d is nvlabs.upfirdn2d
    assert networks3.conv2d_gradfix is nvlabs.conv2d_gradfix
    for name, module in nvlabs.ALIASED.items():
        assert sys.modules[name] is module
    ops = torch_utils.ops
    assert ops.bias_act is nvlabs.bias_act and ops.conv2d_gradfix is nvlabs.conv2d_gradfix
    for theirs in (torch_utils.persistence, ops.fma, ops.filtered_lrelu, ops.conv2d_resample,
                   ops.grid_sample_gradfix, torch_utils.misc):  # fmt: skip
        assert Path(theirs.__file__).is_relative_to(root), theirs
    assert ops.filtered_lrelu.upfirdn2d is nvlabs.upfirdn2d
    assert ops.filtered_lrelu.bias_act is nvlabs.bias_act
    assert ops.conv2d_resample.conv2d_gradfix is nvlabs.conv2d_gradfix
    assert ops.conv2d_resample._parse_padding is nvlabs.upfirdn2d._parse_padding
    assert "SynthesisLayer" in torch_utils.persistence.persistent_classes
    # A network pickle runs the networks module's stored source: it gets ours too.
    unpickled = torch_utils.persistence.module_from_source(inspect.getsource(networks))
    assert unpickled.bias_act is nvlabs.bias_act and unpickled.upfirdn2d is nvlabs.upfirdn2d
    nvlabs.install()  # again: nothing changes
    assert sys.modules["torch_utils.ops.upfirdn2d"] is nvlabs.upfirdn2d


def test_nvlabs_install_without_torch_utils(tmp_path, clean_imports):
    """Outside their repository, install() says what is missing and how to fix it."""
    for name in list(sys.modules):
        if name.split(".")[0] == "torch_utils":
            del sys.modules[name]
    with pytest.raises(ImportError, match=r"cannot import NVlabs' torch_utils .*sys\.path"):
        nvlabs.install()
    assert "torch_utils.ops.bias_act" not in sys.modules
    # A torch_utils without an ops package is not theirs either.
    (tmp_path / "torch_utils").mkdir()
    (tmp_path / "torch_utils" / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    with pytest.raises(ImportError, match=r"cannot import NVlabs' torch_utils\.ops"):
        nvlabs.install()


def test_nvlabs_install_after_their_code_refuses(tmp_path, clean_imports):
    """Their networks imported first hold their ops: install() refuses, naming the module and
    when to call it, and aliases nothing."""
    root = _repository(tmp_path, "nvlabs", "plain")
    _load(root, ["training.networks"])
    sys.path.insert(0, str(root))
    refusal = (
        r"torch_utils\.ops\.bias_act \(from .*bias_act\.py\).* imported before install\(\); "
        r"call stylegan_fast\.compat\.nvlabs\.install\(\) before importing NVlabs' networks"
    )
    with pytest.raises(RuntimeError, match=refusal):
        nvlabs.install()
    assert sys.modules["torch_utils.ops.conv2d_gradfix"] is not nvlabs.conv2d_gradfix


# --- rosinality -------------------------------------------------------------------------------

ROSINALITY_MODULES = ["model", "train_functions", "non_leaking"]


def _rosinality_run(modules, state=None):
    """A training step's computations in float64: G (with its latents), D on fakes and reals,
    the logistic loss's gradients, R1 (inside no_weight_gradients), path length."""
    model, train, non_leaking = modules
    torch.manual_seed(0)
    nets = torch.nn.ModuleDict({"G": model.Generator(), "D": model.Discriminator()})
    if state is not None:
        nets.load_state_dict(state)
    nets.double()  # their kernels are float32 buffers: the shims apply them in float32 (exact)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 8, generator=g, dtype=torch.float64)
    noise = [torch.randn(2, 1, s, s, generator=g, dtype=torch.float64) for s in (4, 8, 8)]
    real = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    pl_noise = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64) / 8
    params = dict(nets.named_parameters())
    fake, _ = nets["G"](z, noise)
    real_pred = nets["D"](non_leaking.resample_2x(real))
    d_loss = train.d_logistic_loss(real_pred, nets["D"](fake)) + fake.square().mean()
    out = {"fake": fake, "real_pred": real_pred}
    out |= _gradients("loss", d_loss, params, ("G.", "D."))
    r1 = train.d_r1_loss(nets["D"](real), real)  # their D regularisation step
    out |= _gradients("R1", r1, params, "D.")
    fake, latents = nets["G"](z, noise, return_latents=True)  # their G regularisation step
    out |= _gradients("PL", train.g_path_regularize(fake, latents, pl_noise), params, "G.")
    return nets.state_dict(), {name: t.detach() for name, t in out.items()}


def test_rosinality_client_trains_like_plain_torch(tmp_path, clean_imports, monkeypatch):
    """Their ``from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d, conv2d_gradfix``
    after install(): their op package (it would compile CUDA) is never imported, nothing is
    built, and a training step's numbers equal the plain-PyTorch run's (float64)."""
    monkeypatch.setattr(torch.utils.cpp_extension, "load", _refuse_compiling)
    plain = _load(_repository(tmp_path, "rosinality", "plain"), ROSINALITY_MODULES)
    state, want = _rosinality_run(plain)
    root = _repository(tmp_path, "rosinality", "would_compile")
    ours = _load(root, ROSINALITY_MODULES, rosinality.install)
    _, got = _rosinality_run(ours, state)
    _compare(got, want)
    assert len(want) > 40
    model = ours[0]
    assert model.upfirdn2d is rosinality.upfirdn2d
    assert model.conv2d_gradfix is rosinality.conv2d_gradfix
    assert model.FusedLeakyReLU is rosinality.FusedLeakyReLU
    assert sys.modules["op"] is rosinality.op
    from op.fused_act import fused_leaky_relu
    from op.upfirdn2d import upfirdn2d

    assert fused_leaky_relu is rosinality.fused_leaky_relu and upfirdn2d is rosinality.upfirdn2d
    rosinality.install()  # again: nothing changes


def test_rosinality_install_after_their_op_refuses(clean_imports):
    """An ``op`` imported first (theirs, or anything of that name) is reported, not replaced."""
    sys.modules["op"] = types.ModuleType("op")
    refusal = (
        r"op \(from <module 'op'>\) imported before install\(\); "
        r"call stylegan_fast\.compat\.rosinality\.install\(\) before"
    )
    with pytest.raises(RuntimeError, match=refusal):
        rosinality.install()
    assert "op.fused_act" not in sys.modules


def test_compat_package_exports():
    assert compat.nvlabs.install is nvlabs.install
    assert set(nvlabs.ALIASED) == {f"torch_utils.ops.{n}" for n in
                                   ("bias_act", "upfirdn2d", "conv2d_gradfix")}  # fmt: skip
    assert set(rosinality.ALIASED) == {"op", "op.fused_act", "op.upfirdn2d", "op.conv2d_gradfix"}
