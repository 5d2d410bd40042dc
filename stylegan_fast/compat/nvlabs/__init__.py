"""NVlabs' ``torch_utils.ops`` op modules (stylegan2-ada-pytorch, stylegan3).

Replace ``from torch_utils.ops import bias_act, upfirdn2d`` with
``from stylegan_fast.compat.nvlabs import bias_act, upfirdn2d``: the names are modules, as
there, so ``bias_act.bias_act(...)``, ``bias_act.activation_funcs[...]`` and
``upfirdn2d.setup_filter(...)`` keep working.
"""

from . import bias_act, upfirdn2d

__all__ = ["bias_act", "upfirdn2d"]
