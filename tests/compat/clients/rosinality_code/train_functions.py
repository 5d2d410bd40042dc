"""The losses of rosinality's train.py, written from the paper: the non-saturating logistic
loss, R1 (its input gradient taken inside no_weight_gradients()) and the path-length penalty."""

import math

import torch
from torch import autograd
from torch.nn import functional as F

from op import conv2d_gradfix


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def d_r1_loss(real_pred, real_img):
    with conv2d_gradfix.no_weight_gradients():
        (grad_real,) = autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


def g_path_regularize(fake_img, latents, noise, mean_path_length=0.5):
    (grad,) = autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    return (path_lengths - mean_path_length).pow(2).mean() / math.sqrt(fake_img.shape[2])
