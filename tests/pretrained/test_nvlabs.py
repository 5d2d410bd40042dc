"""NVlabs StyleGAN1 pickles: imported networks against an independent NumPy forward of the
official graph, the restricted unpickler against hostile and broken files, the variable
checks, and the FFHQ-1024² manifest against the official parameter count."""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
from collections import OrderedDict

import numpy as np
import official_graph as official
import pytest
import torch
from nvlabs_fixtures import stylegan1_variable_shapes, write_fake_stylegan1_pickle

from stylegan_fast.models import Discriminator, Generator
from stylegan_fast.pretrained._unpickle import PickleRefused, restricted_load
from stylegan_fast.pretrained.nvlabs import (
    describe_nvlabs_pickle,
    generator_config_from_variables,
    generator_variable_map,
    is_trainable,
    load_nvlabs_pickle,
    official_manifest,
    read_nvlabs_pickle,
)

TOLERANCE = 1e-4
# Small architectures: (name, fixture arguments, G batch, D batch).
CONFIGS = {
    # 16², 16-8-4 channels: every unfused path.
    "16px": dict(resolution=16),
    # 128²: fused up/down convolutions at 128² (2-4 channels keep the NumPy forward fast).
    "128px-fused": dict(resolution=128, fmap_base=128, fmap_max=4, latent_size=6, dlatent_size=6),
    # Conditional, architecture from shapes alone (no static_kwargs), protocol 2.
    "8px-labels": dict(resolution=8, label_size=3, with_static_kwargs=False, protocol=2),
}


def _close(ours: torch.Tensor, reference: np.ndarray, what: str) -> None:
    ours = ours.detach().double().numpy()
    assert ours.shape == reference.shape, what
    error = np.abs(ours - reference).max()
    scale = max(1.0, np.abs(reference).max())
    assert error <= TOLERANCE * scale, f"{what}: max error {error:.3g} (scale {scale:.3g})"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def imported(request, tmp_path_factory):
    """(fixture arguments, written variables, loaded networks, path) for one config."""
    args = CONFIGS[request.param]
    path = tmp_path_factory.mktemp("nvlabs") / f"{request.param}.pkl"
    variables = write_fake_stylegan1_pickle(path, seed=len(request.param), **args)
    networks = load_nvlabs_pickle(path)
    assert not path.with_suffix(".executed").exists()
    return args, variables, networks, path


def _inputs(args, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal([batch, args.get("latent_size", 8)]).astype(np.float32)
    labels = None
    if args.get("label_size"):
        labels = np.eye(args["label_size"], dtype=np.float32)[rng.integers(0, 3, batch)]
    return z, labels


def _t(array):
    return None if array is None else torch.from_numpy(array)


def test_mapping_matches_official_graph(imported):
    args, variables, networks, _ = imported
    z, labels = _inputs(args, 4, 1)
    for ours, key in ((networks["G_ema"], "Gs"), (networks["G"], "G")):
        w = ours.mapping(_t(z), _t(labels))
        expected = official.mapping(variables[key], z, labels)
        assert w.shape[1] == ours.num_ws
        _close(w[:, 0], expected, f"{key} mapping")
        _close(w[:, -1], expected, f"{key} mapping (last layer)")
        _close(ours.w_avg, variables[key]["dlatent_avg"].astype(np.float64), f"{key} w_avg")


@pytest.mark.parametrize("psi", [None, 0.7])
def test_generator_matches_official_graph(imported, psi):
    """G_ema(z) with the pickle's noise inputs (randomize_noise=False), truncation off and on
    (psi 0.7 on the first 8 layers, the official inference default; fewer where the network
    has no more than 8, so that some layers stay untruncated)."""
    args, variables, networks, _ = imported
    z, labels = _inputs(args, 2, 2)
    G = networks["G_ema"]
    cutoff = min(8, G.num_ws - 2)
    kwargs = {} if psi is None else dict(truncation_psi=psi, truncation_cutoff=cutoff)
    with torch.no_grad():
        images = G(_t(z), _t(labels), noise_mode="const", **kwargs)
    expected = official.generator(variables["Gs"], z, labels, psi=psi, cutoff=cutoff)
    _close(images, expected, f"G_ema images (psi={psi})")


def test_synthesis_with_given_noise_matches(imported):
    """Synthesis from per-layer w's (different per layer) with noise passed to both."""
    args, variables, networks, _ = imported
    G = networks["G_ema"]
    rng = np.random.default_rng(3)
    ws = rng.standard_normal([2, G.num_ws, G.w_dim]).astype(np.float32)
    noise = [
        rng.standard_normal([2, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)]).astype(np.float32)
        for i in range(G.num_ws)
    ]
    with torch.no_grad():
        images = G.synthesis(_t(ws), noise=[_t(n) for n in noise])
    _close(images, official.synthesis(variables["Gs"], ws, noise), "synthesis with given noise")


def test_discriminator_matches_official_graph(imported):
    """D on 8 (or, at 128², 4) images: minibatch-stddev groups of min(4, N)."""
    args, variables, networks, _ = imported
    batch = 4 if args["resolution"] >= 128 else 8
    rng = np.random.default_rng(4)
    size = args["resolution"]
    images = rng.standard_normal([batch, args.get("num_channels", 3), size, size])
    images = images.astype(np.float32)
    _, labels = _inputs(args, batch, 5)
    with torch.no_grad():
        scores = networks["D"](_t(images), _t(labels))
    _close(scores, official.discriminator(variables["D"], images, labels), "D scores")


def test_g_and_g_ema_hold_their_own_networks(imported):
    _, variables, networks, _ = imported
    for ours, key in ((networks["G"], "G"), (networks["G_ema"], "Gs")):
        expected = torch.from_numpy(variables[key]["G_mapping/Dense0/weight"]).t()
        assert torch.equal(ours.mapping.layers[0].weight.detach(), expected)
    assert not torch.equal(networks["G"].mapping.w_avg, networks["G_ema"].mapping.w_avg)
    assert isinstance(networks["D"], Discriminator)
    assert isinstance(networks["G_ema"], Generator) and networks["G_ema"].progressive


def test_fused_layers_follow_resolution(imported):
    args, _, networks, _ = imported
    G, D = networks["G_ema"], networks["D"]
    for block in G.synthesis.blocks[1:]:
        assert block.layer0.conv.fused_resample == (block.resolution >= 128)
    for block in D.blocks[1:]:
        assert block.conv1.fused_resample == (block.resolution >= 128)
    assert G.c_dim == D.c_dim == args.get("label_size", 0)


def test_fractional_lod_matches_official_graph(tmp_path):
    """A pickle saved mid-growth (lod 1.5): both networks fade between two levels as the
    official 'linear' structure does."""
    path = tmp_path / "growing.pkl"
    variables = write_fake_stylegan1_pickle(path, resolution=16, lod=1.5, seed=7)
    networks = load_nvlabs_pickle(path)
    assert networks["G_ema"].lod.item() == 1.5 and networks["D"].lod.item() == 1.5
    z, _ = _inputs({}, 2, 8)
    with torch.no_grad():
        images = networks["G_ema"](_t(z), noise_mode="const")
    _close(images, official.generator(variables["Gs"], z), "G_ema at lod 1.5")
    reals = np.random.default_rng(9).standard_normal([4, 3, 16, 16]).astype(np.float32)
    with torch.no_grad():
        scores = networks["D"](_t(reals))
    _close(scores, official.discriminator(variables["D"], reals), "D at lod 1.5")


ERAS = [(2, True), (2, False), (3, True), (3, False), (4, False)]


@pytest.mark.parametrize("protocol, legacy", ERAS)
def test_numpy_names_of_both_eras_and_protocols(tmp_path, protocol, legacy):
    """2019 files name numpy.core.multiarray, numpy >= 2 writes numpy._core.multiarray;
    protocol 2 pickles bytes through _codecs.encode, protocol 4 (the official files') names
    globals with STACK_GLOBAL."""
    path = tmp_path / "net.pkl"
    write_fake_stylegan1_pickle(path, resolution=8, protocol=protocol, legacy_numpy=legacy)
    assert (b"numpy.core.multiarray" in path.read_bytes()) == legacy
    assert load_nvlabs_pickle(path)["G_ema"].resolution == 8


# --------------------------------------------------------------------------------------------
# Hostile and broken files.


class _Reduce:
    """Pickles as ``func(*args)``: what a hostile file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile_payloads(marker):
    script = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system": (_Reduce(os.system, f"touch {marker}"), os.system.__module__ + ".system"),
        "builtins.eval": (_Reduce(eval, script), "builtins.eval"),
        "builtins.exec": (_Reduce(exec, script), "builtins.exec"),
        "subprocess.Popen": (_Reduce(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
        "builtins.getattr": (
            _Reduce(getattr, _Reduce(__import__, "os"), "system"),
            "builtins.getattr",
        ),
    }


HOSTILE = ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.getattr"]


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("protocol", [3, 4])
def test_hostile_globals_are_refused_before_running(tmp_path, payload, protocol):
    marker = tmp_path / "marker"
    obj, name = _hostile_payloads(marker)[payload]
    path = tmp_path / "evil.pkl"
    # Hidden inside an otherwise plausible (G, D, Gs) tuple of variable lists.
    path.write_bytes(pickle.dumps(({"variables": [("x", obj)]}, 1, 2), protocol=protocol))
    with pytest.raises(PickleRefused) as info:
        load_nvlabs_pickle(path)
    message = str(info.value)
    assert name in message and "\n" not in message, message
    assert not marker.exists()


def test_protocol_2_names_python_2_modules(tmp_path):
    """Protocol 2 writes Python 2's module names; the refusal names what the file says."""
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps((_Reduce(eval, "1"), 1, 2), protocol=2))
    with pytest.raises(PickleRefused, match=r"__builtin__\.eval"):
        load_nvlabs_pickle(path)


def test_codecs_encode_is_only_latin1_bytes():
    text = "\x00\xff"
    good = pickle.dumps(text.encode("latin1"), protocol=2)
    assert b"_codecs" in good and restricted_load(io.BytesIO(good)) == b"\x00\xff"
    hostile = good.replace(b"latin1", b"base64")
    with pytest.raises(PickleRefused, match="only latin1"):
        restricted_load(io.BytesIO(hostile))


def test_persistent_ids_are_refused(tmp_path):
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "ref" else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(("ref", 1, 2))
    with pytest.raises(PickleRefused, match="persistent id"):
        restricted_load(io.BytesIO(buffer.getvalue()))


def test_build_module_src_is_never_executed(tmp_path):
    """The fixture's build_module_src would create the marker and raise; loading and
    describing leave it inert (the state keeps it as a string)."""
    path = tmp_path / "net.pkl"
    write_fake_stylegan1_pickle(path, resolution=8)
    networks = read_nvlabs_pickle(path)
    assert set(networks) == {"G", "D", "Gs"}
    load_nvlabs_pickle(path)
    describe_nvlabs_pickle(path)
    assert not path.with_suffix(".executed").exists()
    assert "dnnlib" not in __import__("sys").modules


def _broken_files(tmp_path):
    good = tmp_path / "good.pkl"
    write_fake_stylegan1_pickle(good, resolution=8)
    data = good.read_bytes()
    zip_path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, zip_path)
    legacy_torch = tmp_path / "legacy.pt"
    torch.save(OrderedDict(w=torch.zeros(2)), legacy_torch, _use_new_zipfile_serialization=False)
    return {
        "empty": (b"", "empty"),
        "truncated": (data[: len(data) // 2], "truncated"),
        "cut at the end": (data[:-1], "truncated"),
        "a dict": (pickle.dumps({"G": 1}, protocol=2), "holds a dict"),
        "a 2-tuple": (pickle.dumps((1, 2), protocol=2), "holds a 2-tuple"),
        "a tuple of ints": (pickle.dumps((1, 2, 3), protocol=2), "G is int"),
        "a torch zip file": (zip_path.read_bytes(), "zip archive"),
        "a legacy torch file": (legacy_torch.read_bytes(), "a legacy torch.save file"),
        "text": (b"# not a pickle\n", "not a pickle"),
        "garbage": (b"\x80\x03\xff\xfe\x00", "not a readable pickle"),
    }


def test_broken_and_foreign_files_give_one_line(tmp_path):
    for case, (data, expected) in _broken_files(tmp_path).items():
        path = tmp_path / "case.pkl"
        path.write_bytes(data)
        with pytest.raises(PickleRefused) as info:
            load_nvlabs_pickle(path)
        message = str(info.value)
        assert expected in message and "\n" not in message, (case, message)
        assert str(path) in message, (case, message)
        assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------------
# Variables: consumed exactly once, named when wrong.


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(extra_variables={"Gs/G_synthesis/8x8/Extra/weight": np.zeros(3, np.float32)}),
         "unknown variables G_synthesis/8x8/Extra/weight"),
        (dict(extra_variables={"D/4x4/Dense2/bias": np.zeros(1, np.float32)}),
         "unknown variables 4x4/Dense2/bias"),
        (dict(drop_variables=["Gs/G_synthesis/8x8/Conv1/bias"]),
         "missing variables G_synthesis/8x8/Conv1/bias"),
        (dict(drop_variables=["G/G_synthesis/noise3", "G/dlatent_avg"]),
         "missing variables G_synthesis/noise3, dlatent_avg"),
        (dict(drop_variables=["D/FromRGB_lod1/bias"]), "missing variables FromRGB_lod1/bias"),
        (dict(drop_variables=["Gs/G_synthesis/ToRGB_lod0/weight"]),
         "missing variable G_synthesis/ToRGB_lod0/weight"),
        (dict(extra_variables={"Gs/G_synthesis/8x8/Conv1/bias": np.zeros(5, np.float32)}),
         "variable G_synthesis/8x8/Conv1/bias has shape [5], expected [8]"),
    ],
)  # fmt: skip
def test_unknown_missing_and_misshapen_variables_are_named(tmp_path, change, expected):
    path = tmp_path / "bad.pkl"
    write_fake_stylegan1_pickle(path, resolution=8, **change)
    for action in (load_nvlabs_pickle, describe_nvlabs_pickle):
        with pytest.raises(ValueError) as info:
            action(path)
        message = str(info.value)
        assert expected in message and "\n" not in message, message


def test_options_our_layers_lack_are_refused():
    shapes = official_manifest(16, fmap_base=32, fmap_max=16, latent_size=8, dlatent_size=8,
                               mapping_layers=2, mapping_fmaps=8)["G"]  # fmt: skip
    with pytest.raises(ValueError, match="use_pixel_norm=True is not supported"):
        generator_config_from_variables(shapes, {"use_pixel_norm": True})
    with pytest.raises(ValueError, match="mapping_nonlinearity='relu' is not supported"):
        generator_config_from_variables(shapes, {"mapping_nonlinearity": "relu"})
    odd = dict(shapes, **{"G_synthesis/8x8/Conv1/weight": (3, 3, 8, 7)})
    with pytest.raises(ValueError, match=r"no fmap_base.*8²: 7"):
        generator_config_from_variables(odd)


# --------------------------------------------------------------------------------------------
# Manifest.

SMALL = dict(fmap_base=32, fmap_max=16, latent_size=8, dlatent_size=8, mapping_layers=2,
             mapping_fmaps=8)  # fmt: skip


@pytest.mark.parametrize("resolution, label_size", [(16, 0), (8, 3), (128, 0)])
def test_manifest_matches_the_naming_rules(resolution, label_size):
    """Our variable maps against the fixture's independent rendering of the naming rules."""
    small = dict(SMALL, fmap_base=128, fmap_max=4) if resolution >= 128 else SMALL
    ours = official_manifest(resolution, label_size=label_size, **small)
    rules = stylegan1_variable_shapes(resolution=resolution, label_size=label_size, **small)
    flat_g = {
        (f"{scope}/{name}" if scope else name): shape
        for scope, variables in rules["G"].items()
        for name, shape in variables.items()
    }
    assert ours["G"] == flat_g
    assert ours["D"] == rules["D"][""]


def test_ffhq_manifest_has_the_official_parameter_count():
    """FFHQ 1024²: Gs has 26,219,627 trainable parameters (NVlabs' README); our Generator built
    from the config the variables give has exactly those, variable by variable."""
    manifest = official_manifest(1024)
    shapes = manifest["G"]
    assert sum(math.prod(s) for n, s in shapes.items() if is_trainable(n)) == 26_219_627
    assert len(shapes) == 2 + 16 + 18 + 1 + 18 * 4 + 17 + 18 + 1  # see the count below
    config = generator_config_from_variables(
        shapes, {"num_channels": 3, "resolution": 1024, "label_size": 0}
    )
    assert (config.resolution, config.fmap_base, config.fmap_max, config.fmap_decay) == (
        1024, 8192, 512, 1.0)  # fmt: skip
    assert (config.z_dim, config.w_dim, config.mapping_layers, config.num_ws) == (512, 512, 8, 18)
    G = Generator(config)
    params = dict(G.named_parameters())
    assert sum(p.numel() for p in params.values()) == 26_219_627
    for name, target in generator_variable_map(config).items():
        if is_trainable(name):
            assert params[target.key].numel() == math.prod(shapes[name]), name
    assert shapes["G_synthesis/1024x1024/Conv0_up/weight"] == (3, 3, 32, 16)
    assert shapes["G_synthesis/4x4/Const/const"] == (1, 512, 4, 4)
    assert shapes["G_synthesis/noise17"] == (1, 1, 1024, 1024)
    assert shapes["G_mapping/Dense7/weight"] == (512, 512)
    assert manifest["D"]["4x4/Conv/weight"] == (3, 3, 513, 512)
    assert manifest["D"]["FromRGB_lod0/weight"] == (1, 1, 3, 16)


# Variables of the FFHQ G above: lod and dlatent_avg; 16 mapping (8 dense x weight, bias);
# 18 noise inputs; the const; 18 layers x (noise weight, bias, style weight, style bias);
# 17 conv weights (all layers but the const); 9 ToRGB x (weight, bias); the synthesis lod.


def test_describe_names_the_architecture(imported):
    args, variables, _, path = imported
    text = describe_nvlabs_pickle(path)
    resolution = args["resolution"]
    assert f"{resolution}x{resolution}" in text
    fused = "from 128² up" if resolution >= 128 else "none"
    assert f"fused up-convolutions {fused}" in text
    trainable = sum(v.size for n, v in variables["Gs"].items() if is_trainable(n))
    assert f"Gs: {trainable:,} trainable parameters" in text
    if args.get("label_size"):
        assert f"{args['label_size']} labels" in text
    assert len(text.splitlines()) == 9
