"""StyleGAN1-format network pickles built in the test, without TensorFlow or downloads.

:func:`write_fake_stylegan1_pickle` writes ``(G, D, Gs)`` the way NVlabs' training loop does:
each network pickles as ``dnnlib.tflib.network.Network`` with the state dict of that class
(``version`` 3, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
``build_func_name``, ``variables``), the variables named and shaped by the naming rules of
``training/networks_stylegan.py`` (``G_style``/``G_mapping``/``G_synthesis``/``D_basic``),
filled with seeded random numbers. The names and shapes here are written from those rules,
independently of :func:`stylegan_fast.pretrained.nvlabs.official_manifest`, so the tests can
compare the two.

A stand-in ``Network`` class is registered in ``sys.modules`` only while pickling (the names
are removed afterwards, so a loader cannot lean on them), and ``build_module_src`` is Python
that would create ``marker_path`` and raise if anything executed it.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

_NETWORK_MODULE = "dnnlib.tflib.network"
# What numpy >= 2 writes and what the 2019 files say (the loader must accept both).
_NEW_NUMPY_GLOBAL = b"cnumpy._core.multiarray\n"
_OLD_NUMPY_GLOBAL = b"cnumpy.core.multiarray\n"


def _nf(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def stylegan1_variable_shapes(
    *,
    resolution: int,
    num_channels: int = 3,
    label_size: int = 0,
    fmap_base: int = 32,
    fmap_decay: float = 1.0,
    fmap_max: int = 16,
    latent_size: int = 8,
    dlatent_size: int = 8,
    mapping_layers: int = 2,
    mapping_fmaps: int = 8,
    mbstd_num_features: int = 1,
) -> dict[str, dict[str, dict[str, tuple[int, ...]]]]:
    """The variables of ``G_style`` and ``D_basic`` as ``{network: {scope: {name: shape}}}``:
    ``network`` is ``"G"`` or ``"D"``, ``scope`` is ``""`` (the network's own variables),
    ``"G_mapping"`` or ``"G_synthesis"``. TensorFlow layouts: conv ``[k, k, in, out]``, dense
    ``[in, out]``."""
    log2 = resolution.bit_length() - 1

    def nf(stage):
        return _nf(stage, fmap_base, fmap_decay, fmap_max)

    mapping: dict[str, tuple[int, ...]] = {}
    if label_size:
        mapping["LabelConcat/weight"] = (label_size, latent_size)
    fan_in = latent_size * (2 if label_size else 1)
    for i in range(mapping_layers):
        fan_out = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
        mapping[f"Dense{i}/weight"] = (fan_in, fan_out)
        mapping[f"Dense{i}/bias"] = (fan_out,)
        fan_in = fan_out

    synthesis: dict[str, tuple[int, ...]] = {"lod": ()}
    num_layers = 2 * log2 - 2
    for layer in range(num_layers):
        size = 2 ** (layer // 2 + 2)
        synthesis[f"noise{layer}"] = (1, 1, size, size)

    def epilogue(scope, channels):
        synthesis[f"{scope}/Noise/weight"] = (channels,)
        synthesis[f"{scope}/bias"] = (channels,)
        synthesis[f"{scope}/StyleMod/weight"] = (dlatent_size, 2 * channels)
        synthesis[f"{scope}/StyleMod/bias"] = (2 * channels,)

    def torgb(res, channels):
        synthesis[f"ToRGB_lod{log2 - res}/weight"] = (1, 1, channels, num_channels)
        synthesis[f"ToRGB_lod{log2 - res}/bias"] = (num_channels,)

    synthesis["4x4/Const/const"] = (1, nf(1), 4, 4)
    epilogue("4x4/Const", nf(1))
    synthesis["4x4/Conv/weight"] = (3, 3, nf(1), nf(1))
    epilogue("4x4/Conv", nf(1))
    torgb(2, nf(1))
    for res in range(3, log2 + 1):
        scope = f"{2**res}x{2**res}"
        synthesis[f"{scope}/Conv0_up/weight"] = (3, 3, nf(res - 2), nf(res - 1))
        epilogue(f"{scope}/Conv0_up", nf(res - 1))
        synthesis[f"{scope}/Conv1/weight"] = (3, 3, nf(res - 1), nf(res - 1))
        epilogue(f"{scope}/Conv1", nf(res - 1))
        torgb(res, nf(res - 1))

    disc: dict[str, tuple[int, ...]] = {"lod": ()}
    for res in range(log2, 1, -1):
        lod = log2 - res
        disc[f"FromRGB_lod{lod}/weight"] = (1, 1, num_channels, nf(res - 1))
        disc[f"FromRGB_lod{lod}/bias"] = (nf(res - 1),)
        scope = f"{2**res}x{2**res}"
        if res >= 3:
            disc[f"{scope}/Conv0/weight"] = (3, 3, nf(res - 1), nf(res - 1))
            disc[f"{scope}/Conv0/bias"] = (nf(res - 1),)
            disc[f"{scope}/Conv1_down/weight"] = (3, 3, nf(res - 1), nf(res - 2))
            disc[f"{scope}/Conv1_down/bias"] = (nf(res - 2),)
    disc["4x4/Conv/weight"] = (3, 3, nf(1) + mbstd_num_features, nf(1))
    disc["4x4/Conv/bias"] = (nf(1),)
    disc["4x4/Dense0/weight"] = (nf(1) * 16, nf(0))
    disc["4x4/Dense0/bias"] = (nf(0),)
    disc["4x4/Dense1/weight"] = (nf(0), max(label_size, 1))
    disc["4x4/Dense1/bias"] = (max(label_size, 1),)

    return {
        "G": {
            "": {"lod": (), "dlatent_avg": (dlatent_size,)},
            "G_mapping": mapping,
            "G_synthesis": synthesis,
        },
        "D": {"": disc},
    }


def _random_value(name: str, shape, rng: np.random.Generator, mapping_lrmul: float):
    """Seeded values on the scale the official parameterisation stores them at."""
    if name.endswith("lod"):
        return np.float32(0.0)
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "bias":
        value = rng.normal(0.0, 0.2, shape)
    elif name.startswith("G_synthesis/noise"):
        value = rng.normal(0.0, 1.0, shape)
    elif name.endswith("Noise/weight"):
        value = rng.normal(0.0, 0.3, shape)
    elif name == "dlatent_avg":
        value = rng.normal(0.0, 0.5, shape)
    else:
        value = rng.normal(0.0, 1.0, shape)
    if name.startswith("G_mapping/Dense"):
        value = value / mapping_lrmul  # stored divided by lrmul (equalized learning rate)
    return np.asarray(value, dtype=np.float32)


def _network_class():
    """A class that pickles as ``dnnlib.tflib.network.Network`` with a given state."""

    class Network:
        def __init__(self, state):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__ = _NETWORK_MODULE
    Network.__qualname__ = Network.__name__ = "Network"
    return Network


def _hostile_source(marker_path: Path) -> str:
    return (
        f"open({str(marker_path)!r}, 'w').write('build_module_src was executed')\n"
        "raise RuntimeError('build_module_src must never be executed')\n"
    )


def write_fake_stylegan1_pickle(
    path,
    *,
    resolution: int = 16,
    mapping_lrmul: float = 0.01,
    mbstd_group_size: int = 4,
    seed: int = 0,
    lod: float = 0.0,
    protocol: int = 3,
    legacy_numpy: bool = True,
    with_static_kwargs: bool = True,
    marker_path=None,
    extra_variables: Mapping[str, np.ndarray] | None = None,
    drop_variables: Sequence[str] = (),
    **architecture,
) -> dict[str, dict[str, np.ndarray]]:
    """Writes a StyleGAN1 ``(G, D, Gs)`` network pickle to ``path``.

    Args:
        path: the file to write.
        resolution, architecture: the keyword arguments of :func:`stylegan1_variable_shapes`
            (``num_channels``, ``label_size``, ``fmap_base``, ``fmap_decay``, ``fmap_max``,
            ``latent_size``, ``dlatent_size``, ``mapping_layers``, ``mapping_fmaps``,
            ``mbstd_num_features``), named as ``networks_stylegan.py`` names them; small
            defaults (16-8-4 channels, 8-d latents, 2 mapping layers).
        mapping_lrmul: the stored mapping weights are drawn ``N(0, 1) / mapping_lrmul``.
        mbstd_group_size: written to D's ``static_kwargs`` (shapes cannot tell it).
        seed: G, D and Gs each get their own values from it (Gs differs from G).
        lod: the value of every network's ``lod`` variable.
        protocol: 2, 3, or 4 (the official files' protocol) with ``legacy_numpy=False``: the
            text GLOBAL opcodes ``legacy_numpy`` rewrites exist only up to protocol 3.
        legacy_numpy: name the array globals ``numpy.core.multiarray`` as 2019 numpy did.
        with_static_kwargs: False writes empty ``static_kwargs`` (architecture from shapes).
        marker_path: the file the pickled ``build_module_src`` would create if executed
            (default: ``path`` with suffix ``.executed``).
        extra_variables: ``{"<net>/<name>": array}`` added (``net`` in G, D, Gs; ``name`` as
            in the returned dict, e.g. ``"Gs/G_synthesis/8x8/Extra/weight"``).
        drop_variables: ``"<net>/<name>"`` entries left out.

    Returns:
        ``{"G": {name: array}, "D": {...}, "Gs": {...}}`` as written (after extra/drop), with
        the names NVlabs' ``Network.vars`` uses: ``"G_mapping/Dense0/weight"``,
        ``"G_synthesis/4x4/Const/const"``, ``"dlatent_avg"``, ``"lod"``, ``"4x4/Dense1/bias"``.
    """
    if protocol not in (2, 3, 4) or (protocol == 4 and legacy_numpy):
        raise ValueError(
            f"protocol must be 2 or 3, or 4 with legacy_numpy=False; got {protocol} "
            f"(legacy_numpy={legacy_numpy})"
        )
    path = Path(path)
    marker_path = Path(marker_path) if marker_path is not None else path.with_suffix(".executed")
    shapes = stylegan1_variable_shapes(resolution=resolution, **architecture)
    extra = dict(extra_variables or {})
    dropped = set(drop_variables)
    rng = np.random.default_rng(seed)
    values: dict[str, dict[str, np.ndarray]] = {}
    scopes_of = {"G": shapes["G"], "D": shapes["D"], "Gs": shapes["G"]}
    for net, scopes in scopes_of.items():
        values[net] = {}
        for scope, variables in scopes.items():
            for name, shape in variables.items():
                full = f"{scope}/{name}" if scope else name
                if f"{net}/{full}" in dropped:
                    continue
                value = _random_value(full, shape, rng, mapping_lrmul)
                if full.endswith("lod"):
                    value = np.float32(lod)
                values[net][full] = value
        for key, value in extra.items():
            if key.startswith(net + "/"):
                values[net][key[len(net) + 1 :]] = value

    common = {
        "num_channels": architecture.get("num_channels", 3),
        "resolution": resolution,
        "label_size": architecture.get("label_size", 0),
    }
    if not with_static_kwargs:
        common = {}
    source = _hostile_source(marker_path)
    Network = _network_class()

    def state(name, func, kwargs, variables, components=None):
        return {
            "version": 3,
            "name": name,
            "static_kwargs": dict(kwargs),
            "components": components or {},
            "build_module_src": source,
            "build_func_name": func,
            "variables": list(variables.items()),
        }

    def own(net, scope):
        prefix = scope + "/"
        if scope:
            return {k[len(prefix) :]: v for k, v in values[net].items() if k.startswith(prefix)}
        components = ("G_mapping/", "G_synthesis/")
        return {k: v for k, v in values[net].items() if not k.startswith(components)}

    def generator(name):
        num_layers = 2 * (resolution.bit_length() - 1) - 2
        mapping_kwargs = dict(common, dlatent_broadcast=num_layers) if common else {}
        components = {
            "synthesis": Network(
                state("G_synthesis", "G_synthesis", common, own(name, "G_synthesis"))
            ),
            "mapping": Network(
                state("G_mapping", "G_mapping", mapping_kwargs, own(name, "G_mapping"))
            ),
        }
        return Network(state(name, "G_style", common, own(name, ""), components))

    d_kwargs = dict(common, mbstd_group_size=mbstd_group_size) if common else {}
    networks = (
        generator("G"),
        Network(state("D", "D_basic", d_kwargs, values["D"])),
        generator("Gs"),
    )
    saved = {m: sys.modules.get(m) for m in ("dnnlib", "dnnlib.tflib", _NETWORK_MODULE)}
    try:
        for module_name in saved:
            sys.modules[module_name] = types.ModuleType(module_name)
        sys.modules[_NETWORK_MODULE].Network = Network
        data = pickle.dumps(networks, protocol=protocol)
    finally:
        for module_name, module in saved.items():
            if module is None:
                sys.modules.pop(module_name, None)
            else:
                sys.modules[module_name] = module
    if legacy_numpy:
        data = data.replace(_NEW_NUMPY_GLOBAL, _OLD_NUMPY_GLOBAL)
    path.write_bytes(data)
    return values
