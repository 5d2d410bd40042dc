"""Plain-PyTorch bias_act (the reference), with NVlabs' signature."""

from types import SimpleNamespace

import compat_eager as eager

activation_funcs = {
    name: SimpleNamespace(def_alpha=alpha, def_gain=gain)
    for name, (alpha, gain) in eager.NVLABS_DEFAULTS.items()
}


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    return eager.nvlabs_bias_act(x, b, dim, act, alpha, gain, clamp)


def _init():
    return False
