"""Feature networks for FID and KID: whatever the user supplies, wrapped with the input
preprocessing it expects. Nothing is ever downloaded.

Every image this library hands to a feature network is float ``[N, 3, H, W]`` in ``[-1, 1]``
(what the generators produce and what ``stylegan_fast.train.data`` yields); a
:class:`Preprocessing` maps that to the network's own input convention.

Where the standard FID network comes from (all three are Inception-v3; only the first two
carry the TensorFlow ``inception-2015-12-05`` weights that published FIDs use):

- **NVlabs TorchScript** ``inception-2015-12-05.pt`` (published by NVIDIA with
  stylegan2-ada-pytorch under ``nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/
  metrics/``; clean-fid uses the same file). Load it with
  ``FeatureNet.from_torchscript(path)`` (preset ``"nvlabs-inception"``): it takes images of any
  size as uint8 values ``[0, 255]``, resizes to 299x299 itself, and returns the 2048-d pool
  features when called with ``return_features=True``. This is the file to use for numbers
  comparable with the StyleGAN papers.
- **pytorch-fid's port** ``pt_inception-2015-12-05-6726825d.pth`` (a state dict for the
  ``pytorch_fid.inception.InceptionV3`` module, from the mseitzer/pytorch-fid GitHub
  releases): build that module yourself and pass it with preset ``"pytorch-fid"``: it takes
  float ``[0, 1]``, resizes to 299 (bilinear) and rescales to ``[-1, 1]`` itself, and returns
  a list whose last entry is the ``[N, 2048, 1, 1]`` pool features (flattened here).
- **torchvision** ``inception_v3(weights="IMAGENET1K_V1")`` with ``fc = nn.Identity()``:
  preset ``"torchvision-inception"`` (299x299, ImageNet mean/std). Different weights: its
  FIDs are self-consistent but not comparable with published ones.

Any other ``nn.Module`` or callable ``[N, 3, H, W] -> [N, D]`` works (preset ``"identity"``:
``[-1, 1]`` passed through, no resize), e.g. a small random-init CNN in tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

__all__ = [
    "PREPROCESSING",
    "FeatureNet",
    "Preprocessing",
    "load_feature_net",
]


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How images in ``[-1, 1]`` become a feature network's input.

    Applied in this order: clamp to ``[-1, 1]`` (a generated image is compared as the image it
    would be saved as); optionally round to 256 levels (``quantize_uint8``: what saving to PNG
    does, and what NVlabs does to generated images before Inception); resize to
    ``resize_to`` x ``resize_to`` (bilinear, no antialias, as pytorch-fid) unless None; map
    ``[-1, 1]`` linearly onto ``input_range``; subtract ``mean`` and divide by ``std`` (per
    channel) if given; cast to ``input_dtype``. ``call_kwargs`` are passed to the network.
    """

    input_range: tuple[float, float] = (-1.0, 1.0)
    resize_to: int | None = None
    quantize_uint8: bool = False
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_dtype: torch.dtype = torch.float32
    call_kwargs: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):
        lo, hi = self.input_range
        if not hi > lo:
            raise ValueError(
                f"Preprocessing: input_range must be (low, high) with high > low, "
                f"got {self.input_range}"
            )
        if self.resize_to is not None and (
            not isinstance(self.resize_to, int) or self.resize_to < 1
        ):
            raise ValueError(
                f"Preprocessing: resize_to must be None or a positive int, got {self.resize_to!r}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError("Preprocessing: give both mean and std, or neither")
        if self.input_dtype == torch.uint8 and (not self.quantize_uint8 or self.mean is not None):
            raise ValueError(
                "Preprocessing: input_dtype uint8 needs quantize_uint8=True and no mean/std"
            )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``images: [N, 3, H, W]`` float in ``[-1, 1]`` -> the network's input."""
        x = images.to(torch.float32).clamp(-1.0, 1.0)
        if self.quantize_uint8:
            # (x + 1) * 127.5 lands on 0..255; rounding to nearest recovers the exact uint8
            # values of a real image that was loaded as uint8 / 127.5 - 1.
            x = torch.round((x + 1.0) * 127.5) / 127.5 - 1.0
        if self.resize_to is not None and tuple(x.shape[-2:]) != (self.resize_to,) * 2:
            x = F.interpolate(
                x, size=(self.resize_to, self.resize_to), mode="bilinear", align_corners=False
            )
        lo, hi = self.input_range
        x = (x + 1.0) * ((hi - lo) / 2.0) + lo
        if self.mean is not None:
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        if self.input_dtype == torch.uint8:
            return torch.round(x).clamp(0, 255).to(torch.uint8)
        return x.to(self.input_dtype)


PREPROCESSING: dict[str, Preprocessing] = {
    "identity": Preprocessing(),
    "nvlabs-inception": Preprocessing(
        input_range=(0.0, 255.0),
        quantize_uint8=True,
        input_dtype=torch.uint8,
        call_kwargs=(("return_features", True),),
    ),
    "pytorch-fid": Preprocessing(input_range=(0.0, 1.0)),
    "torchvision-inception": Preprocessing(
        input_range=(0.0, 1.0),
        resize_to=299,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    ),
}


def _resolve_preprocessing(preprocessing: str | Preprocessing) -> Preprocessing:
    if isinstance(preprocessing, Preprocessing):
        return preprocessing
    if isinstance(preprocessing, str) and preprocessing in PREPROCESSING:
        return PREPROCESSING[preprocessing]
    raise ValueError(
        f"preprocessing must be a Preprocessing or one of {sorted(PREPROCESSING)}, "
        f"got {preprocessing!r}"
    )


def _file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _module_digest(module: torch.nn.Module) -> str:
    """The class and every parameter/buffer's name, dtype, shape and bytes: two networks with
    the same digest compute the same function (for modules whose code is their class)."""
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{list(tensor.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class FeatureNet:
    """A feature network ``[N, 3, H, W] -> [N, D]`` with its preprocessing, batched, without
    gradients, on one device.

    Args:
        net: an ``nn.Module`` (TorchScript included) or any callable. Its output may be
            ``[N, D]``, ``[N, D, 1, 1]`` or a list/tuple whose last entry is one of those.
        preprocessing: a :class:`Preprocessing` or a preset name from :data:`PREPROCESSING`.
        device: where the network runs (a module is moved there and put in eval mode);
            None: where a module's parameters are, else CPU.
        batch_size: images per forward call in :meth:`features`.
        identity: a string that names this network for the statistics cache. Default: a
            digest of the module's class and weights, or of the file it was loaded from; for a
            plain function, its qualified name (give ``identity`` when its behaviour changes).
    """

    def __init__(
        self,
        net: Callable[..., torch.Tensor],
        preprocessing: str | Preprocessing = "identity",
        device: torch.device | str | None = None,
        batch_size: int = 64,
        identity: str | None = None,
    ):
        if not callable(net):
            raise TypeError(f"FeatureNet: net must be callable, got {type(net).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"FeatureNet: batch_size must be a positive int, got {batch_size!r}")
        self.preprocessing = _resolve_preprocessing(preprocessing)
        self.batch_size = batch_size
        if isinstance(net, torch.nn.Module):
            if device is None:
                first = next(iter(net.parameters()), None)
                device = first.device if first is not None else "cpu"
            net = net.to(device).eval()
        self.device = torch.device(device if device is not None else "cpu")
        self.net = net
        self._identity = identity

    @classmethod
    def from_torchscript(
        cls,
        path: str | os.PathLike,
        preprocessing: str | Preprocessing = "nvlabs-inception",
        device: torch.device | str | None = None,
        batch_size: int = 64,
    ) -> FeatureNet:
        """A TorchScript file (``torch.jit.load``), by default NVlabs' Inception-v3."""
        path = _check_file(path, "path")
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript, but it is the format the standard FID
            # Inception file comes in; the warning is not something a user can act on.
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
            net = torch.jit.load(path, map_location=device or "cpu")
        return cls(
            net,
            preprocessing,
            device=device,
            batch_size=batch_size,
            identity="torchscript:" + _file_digest(path),
        )

    @classmethod
    def from_state_dict(
        cls,
        path: str | os.PathLike,
        module: torch.nn.Module,
        preprocessing: str | Preprocessing = "identity",
        device: torch.device | str | None = None,
        batch_size: int = 64,
        strict: bool = True,
    ) -> FeatureNet:
        """Weights from a ``torch.save``'d state dict (loaded with ``weights_only=True``, so no
        pickled code runs) into ``module``, which the caller builds."""
        path = _check_file(path, "path")
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"FeatureNet.from_state_dict: module must be an nn.Module, got "
                f"{type(module).__name__}"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(
                f"FeatureNet.from_state_dict: {path} holds a {type(state).__name__}, "
                "not a state dict"
            )
        module.load_state_dict(state, strict=strict)
        return cls(module, preprocessing, device=device, batch_size=batch_size)

    def __repr__(self) -> str:
        return (
            f"FeatureNet({type(self.net).__name__}, {self.preprocessing}, device={self.device}, "
            f"batch_size={self.batch_size})"
        )

    @property
    def identity(self) -> str:
        """What names this network in the statistics cache (see the class docstring); a
        module's weights are hashed when asked, so later changes to them count."""
        if self._identity is not None:
            return self._identity
        if isinstance(self.net, torch.nn.Module):
            return "module:" + _module_digest(self.net)
        name = getattr(self.net, "__qualname__", type(self.net).__qualname__)
        return f"callable:{getattr(self.net, '__module__', '?')}.{name}"

    @property
    def cache_identity(self) -> str:
        """The network and its preprocessing, as the statistics cache keys them."""
        return f"{self.identity}|{self.preprocessing!r}"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``images: [N, 3, H, W]`` (or ``[N, 1, H, W]``, replicated to RGB) float in
        ``[-1, 1]`` -> ``[N, D]`` float32 features on the network's device. One forward call:
        use :meth:`features` for many images."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(
                "FeatureNet: images must be a tensor [N, 3, H, W], got "
                + (
                    f"shape {list(images.shape)}"
                    if isinstance(images, torch.Tensor)
                    else type(images).__name__
                )
            )
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[1] != 3:
            raise ValueError(
                f"FeatureNet: images must have 3 (or 1) channels, got shape {list(images.shape)}"
            )
        if not images.is_floating_point():
            raise TypeError(
                f"FeatureNet: images must be float in [-1, 1], got dtype {images.dtype}"
            )
        with torch.no_grad():
            x = self.preprocessing(images.detach().to(self.device))
            out = self.net(x, **dict(self.preprocessing.call_kwargs))
        if isinstance(out, (list, tuple)) and out:
            out = out[-1]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"FeatureNet: the network returned {type(out).__name__}, not a tensor")
        if out.ndim == 4 and out.shape[2:] == (1, 1):
            out = out.flatten(1)
        if out.ndim != 2 or out.shape[0] != images.shape[0]:
            raise ValueError(
                f"FeatureNet: the network must return [N, D] (or [N, D, 1, 1]) for N = "
                f"{images.shape[0]} images, got shape {list(out.shape)}"
            )
        return out.to(torch.float32)

    def features(self, batches: Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
        """Features of each batch of images, re-split into at most ``batch_size`` images per
        forward call; yields ``[B, D]`` float32 CPU tensors."""
        for batch in batches:
            for start in range(0, batch.shape[0], self.batch_size):
                yield self(batch[start : start + self.batch_size]).cpu()


def _check_file(path, name: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file: {path}")
    return path


def load_feature_net(
    net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike,
    module: torch.nn.Module | None = None,
    preprocessing: str | Preprocessing | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
) -> FeatureNet:
    """One entry point for every way of supplying a feature network.

    - a :class:`FeatureNet`: returned as is;
    - a path and no ``module``: a TorchScript file (default preprocessing
      ``"nvlabs-inception"``);
    - a path and a ``module``: a state dict loaded into ``module`` (default ``"identity"``);
    - an ``nn.Module`` or callable ``[N, 3, H, W] -> [N, D]`` (default ``"identity"``).
    """
    if isinstance(net, FeatureNet):
        return net
    if isinstance(net, (str, os.PathLike)):
        if module is None:
            return FeatureNet.from_torchscript(
                net, preprocessing or "nvlabs-inception", device, batch_size
            )
        return FeatureNet.from_state_dict(
            net, module, preprocessing or "identity", device, batch_size
        )
    if module is not None:
        raise ValueError("load_feature_net: module is only used with a state-dict path")
    return FeatureNet(net, preprocessing or "identity", device=device, batch_size=batch_size)
