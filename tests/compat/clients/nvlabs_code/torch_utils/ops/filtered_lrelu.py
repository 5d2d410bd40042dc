"""Stand-in for stylegan3's filtered_lrelu (left to the user), built, as theirs is when it
cannot use its plugin, on the sibling modules bias_act and upfirdn2d: add the bias, upsample
with ``fu``, leaky ReLU with gain and clamp, filter with ``fd`` and downsample."""

from . import bias_act
from . import upfirdn2d


def filtered_lrelu(
    x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=2**0.5, slope=0.2, clamp=None
):
    x = bias_act.bias_act(x=x, b=b)
    x = upfirdn2d.upfirdn2d(x=x, f=fu, up=up, padding=padding, gain=up**2)
    x = bias_act.bias_act(x=x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d.upfirdn2d(x=x, f=fd, down=down)
