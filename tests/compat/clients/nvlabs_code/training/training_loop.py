"""The switches NVlabs' training loop sets before training."""

from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import upfirdn2d


def setup():
    upfirdn2d._init()
    bias_act._init()
    conv2d_gradfix.enabled = True  # Improves training speed.
    grid_sample_gradfix.enabled = True
