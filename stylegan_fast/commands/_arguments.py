"""What the generation commands (``generate``, ``mix``, ``interpolate``, ``noise``,
``metrics``) share on the command line: seed lists, ``--network``/``--device``/``--impl``,
truncation, class and noise-mode options, the metric networks (``--feature-net``,
``--feature-preprocessing``, ``--distance-net``; ``metrics`` and ``train --metrics``), and
the checks that turn a bad value into a ``ValueError`` naming its option (the CLI prints it
as one line)."""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from pathlib import Path

import torch

from .._backend import IMPLS
from ..metrics import PREPROCESSING, FeatureNet
from ..models.synthesis import NOISE_MODES
from ..pretrained import load_networks
from ..tools._common import labels

MAX_SEED = 2**32 - 1


def parse_range(text: str, name: str = "seeds", minimum: int = 0) -> list[int]:
    """``"0-9"`` -> ``[0, ..., 9]``; ``"0,3,5-7"`` -> ``[0, 3, 5, 6, 7]`` (order kept,
    duplicates kept). Raises ValueError naming ``name`` for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--{name}: expected a list like 0-9 or 0,3,5-7, got {text!r}")
    values = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            raise ValueError(
                f"--{name}: {part!r} is not an integer or a range A-B (expected e.g. 0-9 or "
                f"0,3,5-7; got {text!r})"
            ) from None
        if first < minimum or last < minimum:
            raise ValueError(f"--{name}: values must be >= {minimum}, got {part!r}")
        if last < first:
            raise ValueError(f"--{name}: range {part!r} ends before it starts")
        values.extend(range(first, last + 1))
    return values


def parse_seeds(text: str, name: str = "seeds") -> list[int]:
    """:func:`parse_range` for seeds, which must lie in ``[0, 2**32 - 1]``."""
    seeds = parse_range(text, name)
    if max(seeds) > MAX_SEED:
        raise ValueError(f"--{name}: seeds must be <= {MAX_SEED}, got {max(seeds)}")
    return seeds


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(text: str) -> torch.device:
    """``--device`` as a torch.device; ValueError for a malformed one or CUDA without a GPU."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"--device: not a device name: {text!r} (e.g. cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: CUDA was asked for but no CUDA GPU is available; use cpu")
    return device


def add_network_arguments(parser: argparse.ArgumentParser, outdir: bool = True) -> None:
    """``--network``, ``--device``, ``--impl`` (and ``--outdir``): every tool takes these."""
    parser.add_argument(
        "--network",
        required=True,
        metavar="FILE",
        help="a generator export, a training checkpoint (its G_ema), an NVlabs StyleGAN1 .pkl "
        "(its Gs) or a rosinality checkpoint (its g_running)",
    )
    if outdir:
        parser.add_argument("--outdir", required=True, help="directory for the output PNGs")
    parser.add_argument(
        "--device",
        default=default_device(),
        help="where to run: cpu, cuda, cuda:N (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--impl", default="auto", choices=IMPLS, help="kernel backend for every op (auto)"
    )


def add_truncation_arguments(parser: argparse.ArgumentParser, psi: float = 0.7) -> None:
    parser.add_argument(
        "--trunc",
        type=float,
        default=psi,
        metavar="PSI",
        help=f"truncation psi in [0, 1] (1: none; default {psi})",
    )
    parser.add_argument(
        "--trunc-cutoff",
        type=int,
        default=None,
        metavar="LAYERS",
        help="truncate only the first LAYERS w layers (default: all)",
    )


def add_class_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--class",
        dest="class_idx",
        type=int,
        default=None,
        metavar="INDEX",
        help="class label for a conditional generator",
    )


def add_noise_mode_argument(
    parser: argparse.ArgumentParser,
    default: str | None,
    help: str | None = None,
    choices: tuple[str, ...] = NOISE_MODES,
) -> None:
    """``--noise-mode``: one of ``choices`` (the synthesis' random, const, none, or the
    command's subset); what the default is and what each mode means there, ``help`` says."""
    parser.add_argument("--noise-mode", default=default, choices=choices, help=help)


def add_metric_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--feature-net``, ``--feature-preprocessing`` (FID/KID/PR) and ``--distance-net``
    (PPL): the user-supplied networks the metrics measure with."""
    parser.add_argument(
        "--feature-net",
        default=None,
        metavar="FILE",
        help="FID/KID/PR: TorchScript feature network (e.g. NVlabs' Inception-v3 file)",
    )
    parser.add_argument(
        "--feature-preprocessing",
        default="nvlabs-inception",
        choices=sorted(PREPROCESSING),
        help="how images become the feature net's input (default nvlabs-inception)",
    )
    parser.add_argument(
        "--distance-net",
        default=None,
        metavar="FILE",
        help="PPL: TorchScript perceptual distance d(img0, img1) -> [N] on [-1, 1] images",
    )


def check_file(option: str, path: str | os.PathLike | None) -> None:
    """ValueError naming ``--option`` when ``path`` is given and is not a file."""
    if path is not None and not os.path.isfile(path):
        raise ValueError(f"--{option}: no such file: {path}")


@contextlib.contextmanager
def _torchscript_file(option: str, path: str | os.PathLike):
    """Checks that ``--option``'s ``path`` is a file; a load inside that fails (torch raises
    RuntimeError variants for a file that is not TorchScript) becomes a one-line ValueError."""
    check_file(option, path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
        try:
            yield
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"--{option}: {path} is not a TorchScript file ({type(exc).__name__})"
            ) from None


def load_feature_net(args: argparse.Namespace, device, batch_size: int = 64) -> FeatureNet:
    """``--feature-net`` with ``--feature-preprocessing`` as a FeatureNet on ``device``."""
    with _torchscript_file("feature-net", args.feature_net):
        return FeatureNet.from_torchscript(
            args.feature_net, args.feature_preprocessing, device, batch_size
        )


def load_distance_net(path: str | os.PathLike, device):
    """``--distance-net``: a TorchScript perceptual distance ``d(img0, img1) -> [N]`` on
    ``device``."""
    with _torchscript_file("distance-net", path):
        net = torch.jit.load(os.fspath(path), map_location=device)
    net.eval()

    def distance(img0, img1):
        return net(img0, img1)

    return distance


def load_network(args: argparse.Namespace):
    """The generator of ``args.network`` (any file :func:`stylegan_fast.pretrained.
    load_networks` reads: its ``G_ema``, else its ``G``) on ``args.device`` with
    ``args.impl``, in eval mode. A missing, corrupt or unknown file raises a ValueError
    naming it."""
    device = resolve_device(args.device)
    networks = load_networks(args.network, impl=args.impl)
    G = networks["G_ema"] if networks["G_ema"] is not None else networks["G"]
    if G is None:
        raise ValueError(f"--network: {args.network} holds no generator")
    return G.to(device).eval().requires_grad_(False)


def check_truncation(G, psi: float, cutoff: int | None) -> None:
    """ValueError naming ``--trunc``/``--trunc-cutoff`` for values the mapping would refuse."""
    if not 0 <= psi <= 1:
        raise ValueError(f"--trunc: must be in [0, 1], got {psi}")
    if cutoff is not None and not 0 <= cutoff <= G.num_ws:
        raise ValueError(f"--trunc-cutoff: must be in [0, num_ws={G.num_ws}], got {cutoff}")


def make_outdir(path: str | os.PathLike) -> Path:
    outdir = Path(path)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--outdir: {outdir} exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


def positive(name: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise ValueError(f"--{name}: must be >= {minimum}, got {value}")
    return value


def check_and_make_outdir(G, args: argparse.Namespace) -> Path:
    """Checks ``--trunc``, ``--trunc-cutoff`` and ``--class`` against the loaded ``G``, then
    creates ``--outdir``: last, so that a bad argument leaves no directory behind."""
    check_truncation(G, args.trunc, args.trunc_cutoff)
    labels(G, args.class_idx, 1)
    return make_outdir(args.outdir)
