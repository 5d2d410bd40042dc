"""Stand-in for NVlabs' conv2d_resample (left to the user): a convolution, upsampling before
it or downsampling after it, through the sibling modules conv2d_gradfix and upfirdn2d (whose
private helpers it imports, as theirs does)."""

from . import conv2d_gradfix
from . import upfirdn2d
from .upfirdn2d import _get_filter_size
from .upfirdn2d import _parse_padding


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1):
    """``x: [N, C, H, W]``, ``w: [O, C / groups, k, k]``; ``padding`` symmetric."""
    px0, px1, py0, py1 = _parse_padding(padding)
    assert px0 == px1 and py0 == py1, "the stand-in pads symmetrically"
    fw, fh = _get_filter_size(f)
    assert up == down == 1 or fw == fh, "the stand-in resamples with square filters"
    if up > 1:
        x = upfirdn2d.upsample2d(x=x, f=f, up=up)
    x = conv2d_gradfix.conv2d(input=x, weight=w, padding=[py0, px0], groups=groups)
    if down > 1:
        x = upfirdn2d.downsample2d(x=x, f=f, down=down)
    return x
