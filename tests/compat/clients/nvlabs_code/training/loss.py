"""The regularisers of NVlabs' StyleGAN2 loss, written from the paper: R1 on (blurred) reals
and the path-length penalty, each input gradient taken inside no_weight_gradients()."""

import math

import torch
import torch_utils.ops.conv2d_gradfix
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d


def blur(img, blur_sigma):
    """stylegan3's blur of D's inputs: a Gaussian of ``blur_sigma`` pixels, separable."""
    blur_size = math.floor(blur_sigma * 3)
    f = torch.arange(-blur_size, blur_size + 1, dtype=torch.float32).div(blur_sigma).square()
    f = f.neg().exp2()
    return upfirdn2d.filter2d(img, f / f.sum())


def r1_loss(D, real_img, r1_gamma, blur_sigma=0):
    real_img_tmp = real_img.detach().requires_grad_(True)
    real_logits = D(blur(real_img_tmp, blur_sigma) if blur_sigma > 0 else real_img_tmp)
    with conv2d_gradfix.no_weight_gradients():
        r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp],
                                       create_graph=True, only_inputs=True)[0]  # fmt: skip
    r1_penalty = r1_grads.square().sum([1, 2, 3])
    return (real_logits * 0 + r1_penalty * (r1_gamma / 2)).mean()


def pl_loss(G, gen_z, pl_noise, pl_mean=0.5, pl_no_weight_grad=True):
    gen_ws = G.mapping(gen_z)
    gen_img = G.synthesis(gen_ws)
    with torch_utils.ops.conv2d_gradfix.no_weight_gradients(pl_no_weight_grad):
        pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                       create_graph=True, only_inputs=True)[0]  # fmt: skip
    pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
    return (pl_lengths - pl_mean).square().mean()
