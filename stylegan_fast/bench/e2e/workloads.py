"""What each end-to-end provider runs: one generator batch, or one training step.

Providers (one set of weights per preset, seeded, so every provider runs the same model):

- ``peer``: :mod:`.peer`, StyleGAN1 in plain PyTorch (eager); ``peer-compile``: the same under
  ``torch.compile`` (generator inference only, the anchor's compiled number).
- ``ref``: our model with ``impl="ref"`` (eager references of the fused ops).
- ``compile``: ``torch.compile`` of the ``ref`` model. In a training step the mapping,
  synthesis and D forward/backward are compiled; R1 runs the eager ``ref`` D (torch.compile
  cannot differentiate twice).
- ``auto``, ``cpp``, ``triton``, ``cuda``: our model with that ``impl`` (the backends every op
  has on the device).
- ``auto+graph``: CUDA-graph replay of the ``auto`` model: ``Generator.compile_graph`` for
  inference; for training, one captured graph holds the whole step (both losses, R1, both
  Adam updates, ``capturable=True``), with a sync-free style mix (``style_mix(...,
  sync_free=True)``) so each replay draws a fresh coin, crossover, noise and second latent.

Precision: fp32 weights throughout; ``fp16``/``bf16`` run the forward passes under
``torch.autocast`` (R1 stays fp32, as the trainer does it). A training step is fp32 or bf16
(fp16 training needs loss scaling, which the benchmark leaves to the trainer).
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch

from ... import _backend
from ...models import Discriminator, Generator, preset_configs
from .peer import PeerDiscriminator, PeerGenerator

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
WORKLOADS = ("generator", "train")
BACKEND_PROVIDERS = ("auto", "cpp", "triton", "cuda")
ALL_PROVIDERS = ("peer", "peer-compile", "ref", "compile", *BACKEND_PROVIDERS, "auto+graph")
# StyleGAN1's Adam settings (lr 0.001, beta1 0, beta2 0.99).
ADAM_LR, ADAM_BETAS = 1e-3, (0.0, 0.99)


def model_backends(device: torch.device) -> list[str]:
    """Our backends that serve every registered op on ``device`` (a model needs them all)."""
    ops = _backend.registered_ops()
    common = set(BACKEND_PROVIDERS[1:])
    for op in ops:
        common &= set(_backend.available_backends(op, device))
    return [b for b in BACKEND_PROVIDERS[1:] if b in common]


def providers_for(workload: str, device: torch.device, requested=None, quick=False) -> list[str]:
    """The providers that can run ``workload`` on ``device``, filtered by ``requested``.

    Defaults leave out the compiled providers on the CPU (Inductor compiles C++ for minutes),
    and with ``quick`` the explicit backends (``auto`` stands for the one it picks)."""
    names = ["peer", "peer-compile", "ref", "compile", "auto", *model_backends(device)]
    if device.type == "cuda":
        names.append("auto+graph")
    if workload == "train":
        names.remove("peer-compile")
    if requested:
        unknown = sorted(set(requested) - set(ALL_PROVIDERS))
        if unknown:
            raise ValueError(f"unknown providers {unknown}; known: {list(ALL_PROVIDERS)}")
        return [p for p in names if p in requested]
    if device.type == "cpu":
        names = [p for p in names if "compile" not in p]
    if quick:  # auto already runs one of the backends; timing it twice doubles a slow run
        names = [p for p in names if p not in BACKEND_PROVIDERS[1:]]
    return names


def _autocast(device: torch.device, dtype, cache_enabled: bool = True):
    # Autocast's weight-cast cache must be off inside a CUDA-graph capture (its cached casts
    # would outlive the capture's memory pool).
    return torch.autocast(
        device.type,
        dtype=dtype or torch.float32,
        enabled=dtype is not None,
        cache_enabled=cache_enabled,
    )


def build_models(preset: str, device: torch.device, channels_last: bool, peer: bool):
    """``(G, D)`` of ``preset`` (ours or the peer) on ``device``, seeded identically."""
    g_cfg, d_cfg = preset_configs(preset)
    torch.manual_seed(0)
    if peer:
        G, D = PeerGenerator(g_cfg), PeerDiscriminator(d_cfg)
    else:
        G, D = Generator(g_cfg, impl="ref"), Discriminator(d_cfg, impl="ref")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)


def _impl_of(provider: str) -> str:
    return "ref" if provider in ("ref", "compile") else provider.split("+")[0]


def generator_call(
    provider: str, preset: str, batch: int, precision: str, channels_last: bool, device
) -> Callable[[int], object]:
    """``call(rep)``: one batch of images from fresh latents (random noise, psi 1)."""
    dtype = PRECISIONS[precision]
    G, _ = build_models(preset, device, channels_last, provider.startswith("peer"))
    G.eval().requires_grad_(False)
    if not provider.startswith("peer"):
        G.set_impl(_impl_of(provider))
    zs = torch.randn(8, batch, G.z_dim, device=device)  # cycled: no RNG in the timed region
    if provider == "auto+graph":
        graphed = G.compile_graph(batch, autocast_dtype=dtype, noise_mode="random")
        return lambda i: graphed(zs[i % 8], clone=False)
    model = torch.compile(G) if provider.endswith("compile") else G

    def call(i):
        with torch.no_grad(), _autocast(device, dtype):
            return model(zs[i % 8], noise_mode="random")

    return call


def train_step_call(
    provider: str,
    preset: str,
    batch: int,
    precision: str,
    channels_last: bool,
    device,
    r1_every: int = 1,
    sync_free: bool = False,
) -> Callable[[int], object]:
    """``call(rep)``: ``max(r1_every, 1)`` training steps, each a D step on reals + fakes
    (non-saturating logistic loss), R1 on reals when due (gamma 10, scaled by the interval),
    Adam, then a G step (style mixing 0.9, random noise), Adam — the train package's losses.
    ``auto+graph`` captures those steps in one CUDA graph and replays it; ``sync_free`` makes
    the steps without host syncs (what capture needs; implied by ``auto+graph``)."""
    from ...models import style_mix
    from ...train.losses import StyleGANLoss, lazy_regularization_adam

    if precision == "fp16":
        raise ValueError("train steps run in fp32 or bf16 (fp16 needs the trainer's loss scaler)")
    graphed = provider == "auto+graph"
    if graphed and torch.device(device).type != "cuda":
        raise ValueError("auto+graph captures a CUDA graph: it needs a CUDA device")
    dtype = PRECISIONS[precision]
    G, D = build_models(preset, device, channels_last, provider == "peer")
    if provider != "peer":
        G.set_impl(_impl_of(provider))
        D.set_impl(_impl_of(provider))
    interval = max(r1_every, 1)
    d_lr, d_betas = lazy_regularization_adam(ADAM_LR, ADAM_BETAS, interval)
    # capturable: Adam keeps its step count on the device and never syncs.
    g_opt = torch.optim.Adam(G.parameters(), lr=ADAM_LR, betas=ADAM_BETAS, capturable=graphed)
    d_opt = torch.optim.Adam(D.parameters(), lr=d_lr, betas=d_betas, capturable=graphed)
    G_main, D_main = G, D
    if provider == "compile":
        G_main = types.SimpleNamespace(
            mapping=torch.compile(G.mapping),
            synthesis=torch.compile(G.synthesis),
            num_ws=G.num_ws,
            z_dim=G.z_dim,
        )
        D_main = torch.compile(D)
    mix = None
    if graphed or sync_free:

        def mix(G, z, c, prob, generator):
            return style_mix(G, z, c, prob, generator, sync_free=True)

    main = StyleGANLoss(G_main, D_main, r1_gamma=10.0, r1_interval=interval, style_mix_fn=mix)
    eager_d = StyleGANLoss(G, D, r1_gamma=10.0, r1_interval=interval)  # R1: double backward
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    reals = [
        (torch.rand(batch, 3, G.resolution, G.resolution, device=device) * 2 - 1).contiguous(
            memory_format=fmt
        )
        for _ in range(2)
    ]
    zs = torch.randn(4, batch, G.z_dim, device=device)
    d_steps = [0]

    def one_step(real, z_d, z_g):
        G.requires_grad_(False)
        D.requires_grad_(True)
        d_opt.zero_grad(set_to_none=True)
        with _autocast(device, dtype, cache_enabled=not graphed):
            loss, _ = main.discriminator_loss(real, None, z_d, None)
        loss.backward()
        if r1_every and d_steps[0] % r1_every == 0:
            penalty, _ = eager_d.discriminator_regularization(real, None)
            penalty.backward()
        d_steps[0] += 1
        d_opt.step()
        D.requires_grad_(False)
        G.requires_grad_(True)
        g_opt.zero_grad(set_to_none=True)
        with _autocast(device, dtype, cache_enabled=not graphed):
            loss, _ = main.generator_loss(z_g, None)
        loss.backward()
        g_opt.step()
        D.requires_grad_(True)

    if not graphed:

        def call(rep):
            for k in range(interval):
                i = rep * interval + k
                one_step(reals[i % 2], zs[i % 4], zs[(i + 1) % 4])

        call.steps_per_call = interval
        return call

    # Static inputs the graph reads; each call copies the next batch into them.
    static = [reals[0].clone(memory_format=fmt), zs[0].clone(), zs[1].clone()]

    def captured_steps():
        for _ in range(interval):
            one_step(*static)

    graph = capture_graph(captured_steps, device)

    def replay(rep):
        static[0].copy_(reals[rep % 2])
        static[1].copy_(zs[rep % 4])
        static[2].copy_(zs[(rep + 1) % 4])
        graph.replay()

    replay.steps_per_call = interval
    return replay


def capture_graph(run: Callable[[], object], device, warmup: int = 3) -> torch.cuda.CUDAGraph:
    """Runs ``run`` ``warmup`` times on a side stream (lazy initialisation, Triton compiles,
    the optimizers' state), then captures one more run in a CUDA graph."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            run()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph
