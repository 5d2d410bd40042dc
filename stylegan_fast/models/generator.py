"""The StyleGAN1 generator (mapping + synthesis), style mixing, and CUDA-graph generation."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from ._configured import ConfiguredModel
from .config import GeneratorConfig, generator_config
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class Generator(ConfiguredModel):
    """StyleGAN1 generator: ``G(z, c) = synthesis(mapping(z, c))``.

    Build one with :meth:`from_preset` (``"stylegan-1024"``, ..., ``"tiny"``) or
    :meth:`from_config`; ``config`` is kept (a copy) so that checkpoints can store
    ``G.config.to_dict()`` and rebuild the model from the file alone.

    Attributes: ``z_dim``, ``w_dim``, ``c_dim``, ``num_ws``, ``resolution``,
    ``img_channels``, ``max_lod``; ``mapping`` (:class:`MappingNetwork`), ``synthesis``
    (:class:`SynthesisNetwork`); buffers ``w_avg [w_dim]`` and ``lod`` (persistent).
    """

    CONFIG = GeneratorConfig
    PRESET_CONFIG = staticmethod(generator_config)

    def __init__(self, config: GeneratorConfig | None = None, *, impl: str = "auto"):
        super().__init__(impl)
        config = self._keep_config(config)
        self.z_dim, self.w_dim, self.c_dim = config.z_dim, config.w_dim, config.c_dim
        self.num_ws, self.resolution = config.num_ws, config.resolution
        self.img_channels, self.max_lod = config.img_channels, config.max_lod
        self.mapping = MappingNetwork(config, impl=impl)
        self.synthesis = SynthesisNetwork(config, impl=impl)

    @property
    def w_avg(self) -> torch.Tensor:
        """``[w_dim]``: the tracked average of w (the mapping network's buffer)."""
        return self.mapping.w_avg

    @property
    def lod(self) -> torch.Tensor:
        """The level-of-detail buffer (0-d float32)."""
        return self.synthesis.lod

    @property
    def progressive(self) -> bool:
        return self.synthesis.progressive

    def set_lod(self, lod: float) -> None:
        """Sets the level of detail: ``0 <= lod <= max_lod`` (progressive models only; fixed
        ones accept 0)."""
        self.synthesis.set_lod(lod)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        *,
        noise: Sequence[torch.Tensor | None] | None = None,
        generator: torch.Generator | None = None,
        update_w_avg: bool = False,
        allow_extrapolation: bool = False,
    ) -> torch.Tensor:
        """Generates images.

        Args:
            z: ``[N, z_dim]``. c: ``[N, c_dim]`` labels, or None (unconditional).
            truncation_psi, truncation_cutoff, update_w_avg, allow_extrapolation: as for
                :meth:`MappingNetwork.forward`.
            noise_mode, noise, generator: as for :meth:`SynthesisNetwork.forward`.

        Returns:
            ``img: [N, img_channels, resolution, resolution]`` in ``z``'s dtype.
        """
        w = self.mapping(
            z,
            c,
            truncation_psi,
            truncation_cutoff,
            update_w_avg,
            allow_extrapolation=allow_extrapolation,
        )
        return self.synthesis(w, noise_mode, noise, generator=generator)

    def compile_graph(self, batch_size: int, **options) -> GraphedGenerator:
        """Captures ``G(z, c, truncation_psi, truncation_cutoff, noise_mode)`` for batches of
        ``batch_size`` in a CUDA graph: ``GraphedGenerator(G, batch_size, **options)``, with
        the keyword options ``truncation_psi=1.0``, ``truncation_cutoff=None``,
        ``noise_mode="const"``, ``autocast_dtype=None``, ``warmup=3`` of
        :class:`GraphedGenerator`."""
        return GraphedGenerator(self, batch_size, **options)

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, z_dim={self.z_dim}, w_dim={self.w_dim}, "
            f"c_dim={self.c_dim}, num_ws={self.num_ws}, impl={self.impl}"
        )


class GraphedGenerator:
    """Fixed-shape generation replayed from a CUDA graph.

    At 4-32 px every layer is a few microseconds of GPU work behind tens of microseconds of
    Python and launch overhead; replaying a captured graph removes the overhead. The graph
    holds static input buffers: each call copies ``z`` (and ``c``) into them, replays, and
    returns the output (a fresh clone unless ``clone=False``, in which case the next call
    overwrites it). The graph bakes in the generator's weights *by address* (in-place
    updates such as an optimizer step or ``load_state_dict`` are seen), ``lod``'s block
    structure at capture time (its fade fraction is read at replay), ``truncation_psi``,
    ``truncation_cutoff`` and ``noise_mode`` ("random" draws fresh noise at each replay).

    Args:
        G: a :class:`Generator` on a CUDA device.
        batch_size: N of every call.
        truncation_psi, truncation_cutoff, noise_mode: as for :meth:`Generator.forward`,
            fixed at capture.
        autocast_dtype: capture under ``torch.autocast("cuda", dtype)`` (fp16/bf16), or None.
        warmup: eager iterations on a side stream before capture (cuDNN autotuning, lazy
            initialisation).
    """

    def __init__(
        self,
        G: Generator,
        batch_size: int,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        autocast_dtype: torch.dtype | None = None,
        warmup: int = 3,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"compile_graph: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"compile_graph: batch_size must be >= 1, got {batch_size}")
        device = G.mapping.layers[0].weight.device
        if device.type != "cuda":
            raise RuntimeError(
                f"compile_graph: CUDA graphs need the generator on a CUDA device; it is on "
                f"{device.type} (move it with G.cuda(), or call G(z) directly on CPU)"
            )
        if not torch.cuda.is_available():  # pragma: no cover - a CUDA tensor implies CUDA
            raise RuntimeError("compile_graph: CUDA is not available")
        self.G, self.batch_size = G, int(batch_size)
        self._kwargs = dict(
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            noise_mode=noise_mode,
        )
        self.autocast_dtype = autocast_dtype
        dtype = G.mapping.layers[0].weight.dtype
        self.static_z = torch.randn([batch_size, G.z_dim], device=device, dtype=dtype)
        self.static_c = None
        if G.c_dim:
            self.static_c = torch.zeros([batch_size, G.c_dim], device=device, dtype=dtype)
            self.static_c[:, 0] = 1
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                self._run()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.static_out = self._run()

    def _run(self) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.G(self.static_z, self.static_c, **self._kwargs)
        with torch.autocast("cuda", dtype=self.autocast_dtype):
            return self.G(self.static_z, self.static_c, **self._kwargs)

    def __call__(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, clone: bool = True
    ) -> torch.Tensor:
        """``z: [batch_size, z_dim]`` (and ``c: [batch_size, c_dim]``) -> images."""
        if not isinstance(z, torch.Tensor) or list(z.shape) != list(self.static_z.shape):
            raise ValueError(
                f"GraphedGenerator: z must have shape {list(self.static_z.shape)} (the captured "
                f"batch), got {list(z.shape) if isinstance(z, torch.Tensor) else type(z)}"
            )
        self.static_z.copy_(z)
        if self.static_c is not None:
            if c is None or list(c.shape) != list(self.static_c.shape):
                raise ValueError(f"GraphedGenerator: c must have shape {list(self.static_c.shape)}")
            self.static_c.copy_(c)
        elif c is not None and c.numel():
            raise ValueError("GraphedGenerator: this generator is unconditional; pass c=None")
        self.graph.replay()
        return self.static_out.clone() if clone else self.static_out


def mix_ws(ws: Sequence[torch.Tensor], crossovers: Sequence[int]) -> torch.Tensor:
    """Style mixing: layers ``[0, crossovers[0])`` from ``ws[0]``, ``[crossovers[0],
    crossovers[1])`` from ``ws[1]``, ..., the rest from ``ws[-1]``.

    Args:
        ws: two or more ``[N, num_ws, w_dim]`` tensors of one shape.
        crossovers: ``len(ws) - 1`` strictly increasing layer indices in ``[1, num_ws - 1]``.

    Returns:
        ``[N, num_ws, w_dim]``.
    """
    ws, crossovers = list(ws), list(crossovers)
    if len(ws) < 2:
        raise ValueError(f"mix_ws: needs two or more w's, got {len(ws)}")
    if len(crossovers) != len(ws) - 1:
        raise ValueError(
            f"mix_ws: needs one crossover per extra w ({len(ws) - 1}), got {len(crossovers)}"
        )
    shape = ws[0].shape
    if any(w.shape != shape for w in ws) or len(shape) != 3:
        raise ValueError(
            "mix_ws: every w must have one shape [N, num_ws, w_dim], got "
            f"{[list(w.shape) for w in ws]}"
        )
    num_ws = shape[1]
    previous = 0
    for layer in crossovers:
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise TypeError(f"mix_ws: crossovers must be ints, got {crossovers!r}")
        if not previous < layer < num_ws:
            raise ValueError(
                f"mix_ws: crossover layers must be strictly increasing in [1, num_ws - 1] = "
                f"[1, {num_ws - 1}], got {crossovers}"
            )
        previous = layer
    bounds = [0, *crossovers, num_ws]
    return torch.cat([w[:, lo:hi] for w, lo, hi in zip(ws, bounds[:-1], bounds[1:])], dim=1)


def style_mix(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None = None,
    prob: float = 0.9,
    generator: torch.Generator | None = None,
    *,
    update_w_avg: bool = False,
    sync_free: bool = False,
) -> torch.Tensor:
    """Style-mixing regularisation (training): ``w = G.mapping(z, c)``, and with probability
    ``prob`` a second ``z'`` mapped and used from one random crossover layer on — one draw
    for the whole minibatch, as StyleGAN1 does.

    ``sync_free=True`` draws the coin and the crossover on ``z``'s device and selects with
    ``torch.where`` instead of branching on them in Python: the same distribution, no
    device-to-host copy, so a training step can be captured in a CUDA graph and replayed with
    fresh draws each time. It maps ``z'`` on every call (one extra mapping network pass) and
    ignores ``generator``.

    The crossover is uniform in ``[1, L)`` where ``L = num_ws - 2 * floor(lod)`` is the
    number of layers the current level of detail uses (mixing needs ``L >= 2``). Everything
    random (the coin, the crossover, ``z'``) comes from ``generator`` (None: torch's default),
    drawn on its device, so CPU runs reproduce bit-exactly.

    Args:
        G: the generator. z: ``[N, z_dim]``. c: ``[N, c_dim]`` or None (used for ``z'`` too).
        prob: mixing probability in [0, 1].
        update_w_avg: update ``G.w_avg`` from the first mapping (as a training step does).

    Returns:
        ``w: [N, num_ws, w_dim]``.
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 <= prob <= 1:
        raise ValueError(f"style_mix: prob must be in [0, 1], got {prob!r}")
    w = G.mapping(z, c, update_w_avg=update_w_avg)
    layers = G.num_ws - 2 * G.synthesis.lod_floor
    if prob == 0 or layers < 2:
        return w
    if sync_free:
        return _style_mix_on_device(G, w, z, c, prob, layers)
    draw_device = generator.device if generator is not None else z.device
    if torch.rand([], generator=generator, device=draw_device).item() >= prob:
        return w
    crossover = int(torch.randint(1, layers, [], generator=generator, device=draw_device))
    z2 = torch.randn(z.shape, generator=generator, device=draw_device, dtype=z.dtype)
    w2 = G.mapping(z2.to(z.device), c)
    return mix_ws([w, w2], [crossover])


def _style_mix_on_device(G, w, z, c, prob: float, layers: int) -> torch.Tensor:
    """``style_mix`` without host syncs: the coin and the crossover stay on the device."""
    mix = torch.rand([], device=z.device) < prob
    crossover = torch.randint(1, layers, [], device=z.device)
    w2 = G.mapping(torch.randn_like(z), c)
    from_w2 = (torch.arange(G.num_ws, device=z.device) >= crossover) & mix
    return torch.where(from_w2[None, :, None], w2, w)
