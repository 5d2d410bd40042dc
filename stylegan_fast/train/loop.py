"""The StyleGAN training loop: alternating D and G steps with Adam, R1 (or WGAN-GP), style
mixing, progressive growing, generator EMA, mixed precision, gradient accumulation,
data-parallel ranks, and periodic stats, sample grids and checkpoints.

Randomness is derived, not carried: every micro-batch draws its latents, style-mixing choices and
synthesis noise from generators of its own (never torch's global ones), seeded from ``(seed, step,
phase, micro-batch index)``. A micro-batch index ``m = rank + world_size * round`` names the same
real images (items ``m, m + M, m + 2M, ...`` of the step's global batch, ``M = world_size *
rounds``) however the ``M`` micro-batches are spread over ranks and accumulation rounds. So a run
resumed from a checkpoint continues bit-exactly on CPU, and ``W`` ranks with ``R`` rounds each train
the same model as one process with ``W * R`` rounds (up to the order gradients are summed in).

Layout of ``outdir``: ``stats.jsonl``, ``checkpoints/checkpoint-<images>.safetensors``,
``samples/reals.png`` and ``samples/fakes-<images>.png``, and ``generator.safetensors`` (the EMA
generator, exported when the run completes). With snapshot metrics also ``metrics.jsonl`` (one
line per snapshot) and ``best.safetensors`` (the EMA generator of the lowest FID so far).

A conditional run's sample grids hold one row per class (the first ``MAX_CLASS_ROWS``
classes), each column one latent: the reals' grid, the first images of each class.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .checkpoint import CheckpointManager, export_generator, load_checkpoint
from .config import PRECISIONS, TrainingConfig
from .data import ShardedSampler
from .ema import GeneratorEMA
from .freeze import frozen_d_parameters
from .losses import StyleGANLoss, lazy_regularization_adam
from .progressive import ProgressiveSchedule, fade_reals, learning_rate
from .rng import capture_rng_state
from .stats import ProgressBar, RunningMeans, StatsWriter, read_stats, save_image_grid

_PHASE_D, _PHASE_G = 0, 1
METRICS_FILE = "metrics.jsonl"
BEST_FILE = "best.safetensors"
MAX_CLASS_ROWS = 32  # rows of a conditional run's sample grid (one class each)


def _derived_seeds(*key: int) -> tuple[int, int]:
    """Two independent 63-bit seeds from a tuple of non-negative ints."""
    words = np.random.SeedSequence(list(key)).generate_state(4, dtype=np.uint32).tolist()
    return (words[0] << 31 | words[1] >> 1), (words[2] << 31 | words[3] >> 1)


def _crossed(before: int, after: int, interval_kimg: float) -> bool:
    interval = max(1, round(interval_kimg * 1000))
    return after // interval > before // interval


class Trainer:
    """Trains ``G`` and ``D`` on ``dataset`` (items ``(image [C, R, R] in [-1, 1], label
    [label_dim])``) following ``config``.

    ``G``/``D`` follow the ``stylegan_fast.models`` contract: ``G.mapping``, ``G.synthesis``,
    ``G.config`` (``to_dict``; ``progressive`` selects growing), ``G.z_dim``, ``G.c_dim``,
    ``G.resolution``, ``G.img_channels``, buffer ``G.w_avg``, ``set_lod`` when progressive, and
    ``D(img, c) -> [N, 1]``. They are moved to the context's device; every rank starts from
    rank 0's weights.

    Args:
        outdir: run directory (written by rank 0 only).
        context: from :func:`distributed.init_distributed` (default: one process on CPU).
        G_ema: the averaged generator (default: a copy of ``G``).
        style_mix_fn: see :class:`losses.StyleGANLoss`.
        show_progress: show the tqdm bar (rank 0).
        snapshot_metrics: ``metrics(G_ema) -> {name: number}``, run on rank 0 at every
            checkpoint (e.g. :class:`stylegan_fast.metrics.snapshot.SnapshotMetrics`); its
            values go to ``metrics.jsonl`` and TensorBoard, and a lower ``fid`` than any before
            exports ``best.safetensors``.
    """

    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        dataset: torch.utils.data.Dataset,
        config: TrainingConfig,
        outdir: str | Path,
        context: distributed.DistributedContext | None = None,
        G_ema: torch.nn.Module | None = None,
        style_mix_fn: Callable | None = None,
        show_progress: bool = True,
        snapshot_metrics: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
    ):
        self.config = config
        self.context = context or distributed.DistributedContext(0, 1, 0, torch.device("cpu"), None)
        world = self.context.world_size
        if config.batch_size % world:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by the {world} ranks"
            )
        self.batch_per_rank = config.batch_size // world
        self.batch_gpu = config.batch_gpu or self.batch_per_rank
        if self.batch_per_rank % self.batch_gpu:
            raise ValueError(
                f"batch_gpu {self.batch_gpu} must divide the per-rank batch {self.batch_per_rank} "
                f"(batch_size {config.batch_size} / {world} ranks)"
            )
        self.rounds = self.batch_per_rank // self.batch_gpu
        self._check_data(G, dataset)

        device = self.context.device
        self.device = device
        # The synthesis noise's generator (reseeded per micro-batch, see _seed_draws): on the
        # device, since the noise op draws on the images' device.
        self._noise_generator = torch.Generator(device)
        self.G = G.to(device).train()
        self.D = D.to(device).train()
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval()
        self.G_ema.requires_grad_(False)
        for module in (self.G, self.D, self.G_ema):
            distributed.broadcast_module(module)
        self.dataset = dataset
        self.label_dim = int(getattr(dataset, "label_dim", 0))

        self.progressive = bool(getattr(G.config, "progressive", False))
        self.schedule = (
            ProgressiveSchedule(
                G.resolution,
                min(config.initial_resolution, G.resolution),
                config.lod_training_kimg,
                config.lod_transition_kimg,
            )
            if self.progressive
            else None
        )
        self.loss = StyleGANLoss.from_config(self.G, self.D, config, style_mix_fn)
        # Lazy R1 runs every r1_interval D steps: StyleGAN2's Adam correction keeps the
        # optimizer's effective statistics per image unchanged (identity for interval 1).
        self._d_interval = (
            config.r1_interval if config.loss == "logistic" and config.r1_gamma > 0 else 1
        )
        _, d_betas = lazy_regularization_adam(config.d_lr, config.adam_betas, self._d_interval)
        self.G_opt = torch.optim.Adam(
            self.G.parameters(), lr=config.g_lr, betas=config.adam_betas, eps=config.adam_eps
        )
        # FreezeD: frozen layers get neither gradients nor optimizer updates.
        frozen = frozen_d_parameters(self.D, config.freeze_d)
        self._d_frozen = {id(p) for p in frozen.values()}
        self.D.requires_grad_(True)
        self._d_trainable = [p for p in self.D.parameters() if id(p) not in self._d_frozen]
        for p in frozen.values():
            p.requires_grad_(False)
        self.D_opt = torch.optim.Adam(
            self._d_trainable, lr=config.d_lr, betas=d_betas, eps=config.adam_eps
        )
        fp16 = config.precision == "fp16"
        self.scalers = {
            "G": torch.amp.GradScaler(device.type, enabled=fp16),
            "D": torch.amp.GradScaler(device.type, enabled=fp16),
        }
        self.ema = GeneratorEMA(config.ema_half_life_kimg * 1000, config.ema_rampup)

        self.images_seen = 0
        self.step = 0
        self.d_steps = 0
        self.lod = self.schedule.lod(0) if self.schedule else 0.0
        self._lod_applied: float | None = None
        self._batches: Iterator | None = None

        self.outdir = Path(outdir)
        main = self.context.is_main
        self.checkpoints = (
            CheckpointManager(self.outdir / "checkpoints", config.keep_checkpoints)
            if main
            else None
        )
        self.stats = StatsWriter(self.outdir, enabled=main)
        self.show_progress = show_progress and main
        self._means = RunningMeans()
        self._progress: ProgressBar | None = None
        grid_generator = torch.Generator().manual_seed(config.seed)
        cols, rows = config.sample_grid
        if self.label_dim:
            # One row per class, one latent per column: a row shows what the class changes.
            rows = min(self.label_dim, MAX_CLASS_ROWS)
            self._grid_z = torch.randn(cols, G.z_dim, generator=grid_generator).repeat(rows, 1)
            self._grid_classes = torch.arange(rows).repeat_interleave(cols)
        else:
            self._grid_z = torch.randn(cols * rows, G.z_dim, generator=grid_generator)
            self._grid_classes = None
        self.sample_grid = (cols, rows)
        self._last_log = (time.perf_counter(), 0)

        self.snapshot_metrics = snapshot_metrics
        self._metrics_log = None
        self._best_fid = None
        if snapshot_metrics is not None:
            self._metrics_log = StatsWriter(
                self.outdir, tensorboard=False, enabled=main, filename=METRICS_FILE
            )
            if main and self._metrics_log.path.stat().st_size:
                # A resumed run in the same folder keeps the best FID its snapshots reached.
                fids = [r["fid"] for r in read_stats(self._metrics_log.path) if "fid" in r]
                self._best_fid = min(fids, default=None)

    @staticmethod
    def _check_data(G, dataset) -> None:
        image, label = dataset[0]
        if tuple(image.shape) != (G.img_channels, G.resolution, G.resolution):
            raise ValueError(
                f"dataset images are {list(image.shape)} but the generator makes "
                f"[{G.img_channels}, {G.resolution}, {G.resolution}]"
            )
        label_dim = int(getattr(dataset, "label_dim", label.numel()))
        if label_dim != G.c_dim:
            raise ValueError(
                f"dataset has {label_dim} label classes but the generator's c_dim is {G.c_dim}"
            )

    # --- state -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The checkpoint tree (see :mod:`checkpoint`)."""
        D_config = getattr(self.D, "config", None)
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "scaler": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "progress": {
                "images_seen": self.images_seen,
                "step": self.step,
                "d_steps": self.d_steps,
                "lod": self.lod,
            },
            "rng": capture_rng_state(),
            "config": {
                "G": self.G.config.to_dict(),
                "D": D_config.to_dict() if D_config is not None else None,
                "train": self.config.to_dict(),
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores weights, optimizers, scalers and progress from :meth:`state_dict`'s tree.

        The torch/numpy/Python generators are not restored: the loop's draws are derived from
        (seed, step), and the caller's generators are the caller's.
        """
        saved = TrainingConfig.from_dict(state["config"]["train"])
        saved_classes = int(state["config"]["G"].get("c_dim", 0) or 0)
        if saved_classes != int(self.G.c_dim):
            # Caught here: load_state_dict would fail on the mapping's shapes with a traceback.
            raise ValueError(
                f"the checkpoint's generator has c_dim {saved_classes} but this run's has "
                f"{self.G.c_dim}: resume with the labels (and --cond or not) it was trained with"
            )
        differing = [
            f.name
            for f in dataclasses.fields(TrainingConfig)
            if f.name
            not in (
                "total_kimg",
                "log_kimg",
                "sample_kimg",
                "checkpoint_kimg",
                "keep_checkpoints",
                "data_workers",
            )
            and getattr(saved, f.name) != getattr(self.config, f.name)
        ]
        if differing:
            warnings.warn(
                f"resuming with training options that differ from the checkpoint's: {differing}; "
                "the run will not continue exactly as it would have",
                stacklevel=2,
            )
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        for name, scaler in self.scalers.items():
            if state["scaler"].get(name):
                scaler.load_state_dict(state["scaler"][name])
        progress = state["progress"]
        self.images_seen = int(progress["images_seen"])
        self.step = int(progress["step"])
        self.d_steps = int(progress["d_steps"])
        self.lod = float(progress["lod"])
        self._lod_applied = self.lod
        self._batches = None  # restarts the data stream at images_seen

    def resume(self, path: str | Path) -> None:
        """Continues from the checkpoint at ``path`` (refused if corrupt)."""
        self.load_state_dict(load_checkpoint(path))

    def save_checkpoint(self) -> Path | None:
        """Writes a checkpoint named by images seen (rank 0); other ranks wait for it."""
        path = None
        if self.context.is_main:
            path = self.checkpoints.save(self.state_dict(), self.images_seen)
        distributed.barrier()
        return path

    # --- one step ------------------------------------------------------------------------

    def _data(self) -> Iterator:
        if self._batches is None:
            world = self.context.world_size
            sampler = ShardedSampler(
                len(self.dataset),
                self.context.rank,
                world,
                seed=self.config.seed,
                start=self.images_seen // world,
            )
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=self.batch_per_rank,
                sampler=sampler,
                num_workers=self.config.data_workers,
                pin_memory=self.device.type == "cuda",
                drop_last=True,
                # The loader draws a base seed at each iterator start: from its own generator,
                # so it never shifts the global RNG between a run and its resumption.
                generator=torch.Generator().manual_seed(self.config.seed),
                persistent_workers=self.config.data_workers > 0,
            )
            self._batches = iter(loader)
        return self._batches

    def _apply_schedule(self) -> None:
        lod = self.schedule.lod(self.images_seen) if self.schedule else 0.0
        resolution = self.schedule.resolution_at(lod) if self.schedule else self.G.resolution
        if self.schedule is not None and lod != self._lod_applied:
            previous = self._lod_applied if self._lod_applied is not None else lod
            if self.config.reset_optimizer_on_new_lod and (
                math.floor(lod) != math.floor(previous) or math.ceil(lod) != math.ceil(previous)
            ):
                # PGGAN/StyleGAN restart Adam's moments when a new level starts fading in.
                self.G_opt.state = collections.defaultdict(dict)
                self.D_opt.state = collections.defaultdict(dict)
            self.G.set_lod(lod)
            self.D.set_lod(lod)
            self.G_ema.set_lod(lod)
        self._lod_applied = lod
        self.lod = lod
        ratio = self._d_interval / (self._d_interval + 1) if self._d_interval > 1 else 1.0
        g_lr = learning_rate(self.config.g_lr, self.config.lr_per_resolution, resolution)
        d_lr = learning_rate(self.config.d_lr, self.config.lr_per_resolution, resolution) * ratio
        for group in self.G_opt.param_groups:
            group["lr"] = g_lr
        for group in self.D_opt.param_groups:
            group["lr"] = d_lr

    def _set_d_trainable(self, flag: bool) -> None:
        """``requires_grad`` of D's trainable parameters (frozen ones stay False)."""
        for p in self._d_trainable:
            p.requires_grad_(flag)

    def _seed_draws(self, phase: int, micro_batch: int) -> tuple[torch.Generator, torch.Generator]:
        """``(draws, noise)``: a CPU generator for the micro-batch's latents, style mixing and
        penalties, and the run's device generator for its synthesis noise, both reseeded from
        ``(seed, step, phase, micro_batch)``. Torch's global generators are left alone, so
        nothing else a process draws shifts the run's noise (or the other way round)."""
        draws, noise = _derived_seeds(self.config.seed, self.step, phase, micro_batch)
        return torch.Generator().manual_seed(draws), self._noise_generator.manual_seed(noise)

    def _autocast(self):
        dtype = PRECISIONS[self.config.precision]
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One D step and one G step on the next global batch; returns detached stats."""
        self._apply_schedule()
        images, labels = next(self._data())
        images = fade_reals(images.to(self.device, non_blocking=True), self.lod)
        labels = labels.to(self.device, non_blocking=True)
        rounds, world, rank = self.rounds, self.context.world_size, self.context.rank
        micro = [
            (images[j::rounds], labels[j::rounds] if self.label_dim else None)
            for j in range(rounds)
        ]
        stats: dict[str, torch.Tensor] = {}

        def add(values):
            for name, value in values.items():
                stats[name] = stats.get(name, 0) + value / rounds

        # Discriminator.
        self.G.requires_grad_(False)
        self._set_d_trainable(True)
        self.D_opt.zero_grad(set_to_none=True)
        regularize = self.loss.is_regularization_step(self.d_steps)
        for j, (real, c) in enumerate(micro):
            generator, noise = self._seed_draws(_PHASE_D, rank + world * j)
            z = torch.randn(real.shape[0], self.G.z_dim, generator=generator).to(self.device)
            with self._autocast():
                loss, values = self.loss.discriminator_loss(real, c, z, c, generator, noise)
            self.scalers["D"].scale(loss / rounds).backward()
            add(values)
            if regularize:  # double backward: eager, full precision
                penalty, values = self.loss.discriminator_regularization(real, c)
                self.scalers["D"].scale(penalty / rounds).backward()
                add(values)
        distributed.all_reduce_gradients(self.D.parameters())
        self.scalers["D"].step(self.D_opt)
        self.scalers["D"].update()
        self.d_steps += 1

        # Generator.
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        self.G_opt.zero_grad(set_to_none=True)
        latents = []
        for j, (real, c) in enumerate(micro):
            generator, noise = self._seed_draws(_PHASE_G, rank + world * j)
            z = torch.randn(real.shape[0], self.G.z_dim, generator=generator).to(self.device)
            latents.append((z, c))
            with self._autocast():
                loss, values = self.loss.generator_loss(z, c, generator, noise)
            self.scalers["G"].scale(loss / rounds).backward()
            add(values)
        distributed.all_reduce_gradients(self.G.parameters())
        self.scalers["G"].step(self.G_opt)
        self.scalers["G"].update()
        self._set_d_trainable(True)

        with torch.no_grad():
            # Track w_avg (for truncation) with this step's latents; ranks average theirs.
            z_all = torch.cat([z for z, _ in latents])
            c_all = torch.cat([c for _, c in latents]) if self.label_dim else None
            self.G.mapping(z_all, c_all, update_w_avg=True)
            self.G.w_avg.copy_(distributed.all_reduce_mean(self.G.w_avg))

        self.images_seen += self.config.batch_size
        self.step += 1
        self.ema.update(self.G_ema, self.G, self.config.batch_size, self.images_seen)
        return stats

    # --- the run -------------------------------------------------------------------------

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000

    def save_samples(self, name: str | None = None) -> Path | None:
        """A grid of ``G_ema`` images from the run's fixed latents, constant noise (rank 0)."""
        if not self.context.is_main:
            return None
        images = []
        with torch.no_grad():
            for start in range(0, len(self._grid_z), self.batch_gpu):
                z = self._grid_z[start : start + self.batch_gpu].to(self.device)
                c = None
                if self._grid_classes is not None:
                    classes = self._grid_classes[start : start + self.batch_gpu]
                    c = torch.nn.functional.one_hot(classes, self.label_dim).float()
                    c = c.to(self.device)
                images.append(self.G_ema(z, c, noise_mode="const").float().cpu())
        path = self.outdir / "samples" / (name or f"fakes-{self.images_seen:09d}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image_grid(torch.cat(images), path, self.sample_grid)
        return path

    def save_reals(self) -> Path | None:
        """The first dataset images in the sample grid's layout (rank 0)."""
        if not self.context.is_main:
            return None
        cols, rows = self.sample_grid
        raw_labels = getattr(self.dataset, "raw_labels", None)
        if self._grid_classes is not None and raw_labels is not None:
            # Row r: the first images of class r (blank cells where a class has fewer).
            indices = [
                [int(i) for i in np.flatnonzero(raw_labels == label)[:cols]]
                for label in range(rows)
            ]
        else:
            count = min(cols * rows, len(self.dataset))
            indices = [list(range(r * cols, min((r + 1) * cols, count))) for r in range(rows)]
        blank = torch.zeros_like(self.dataset[0][0])
        images = torch.stack(
            [
                self.dataset[row[k]][0] if k < len(row) else blank
                for row in indices
                for k in range(cols)
            ]
        )
        path = self.outdir / "samples" / "reals.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image_grid(images, path, self.sample_grid)
        return path

    def measure_snapshot(self, checkpoint: Path | None) -> dict[str, float] | None:
        """Runs ``snapshot_metrics`` on ``G_ema`` (rank 0; the others wait), appends
        ``{"kimg", "step", "time", "snapshot": checkpoint name, **values, "seconds"}`` to
        ``metrics.jsonl``, mirrors the values to TensorBoard as ``metrics/<name>``, and
        exports ``best.safetensors`` when ``fid`` is the lowest so far. Returns the values
        (None on other ranks or without metrics)."""
        if self.snapshot_metrics is None:
            return None
        values = None
        if self.context.is_main:
            started = time.perf_counter()
            values = dict(self.snapshot_metrics(self.G_ema))
            seconds = time.perf_counter() - started
            fid = values.get("fid")
            if fid is not None and (self._best_fid is None or fid < self._best_fid):
                export_generator(self.outdir / BEST_FILE, self.G_ema)
                self._best_fid = fid
            snapshot = checkpoint.name if checkpoint is not None else None
            record = {"snapshot": snapshot, **values, "seconds": seconds}
            self._metrics_log.write(self.kimg, record, step=self.step)
            self.stats.add_scalars(
                self.kimg,
                {f"metrics/{k}": v for k, v in values.items() if not k.startswith("seconds/")},
            )
        distributed.barrier()
        return values

    def _log(self) -> dict[str, float]:
        now = time.perf_counter()
        last_time, last_images = self._last_log
        elapsed = max(now - last_time, 1e-9)
        record: dict[str, float] = {
            "lod": self.lod,
            "lr/G": self.G_opt.param_groups[0]["lr"],
            "lr/D": self.D_opt.param_groups[0]["lr"],
            "img_per_s": (self.images_seen - last_images) / elapsed,
        }
        record.update(self._means.means())
        if self.device.type == "cuda":
            record["memory/peak_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        self._last_log = (now, self.images_seen)
        self.stats.write(self.kimg, record, step=self.step)
        return record

    def run(self, until_kimg: float | None = None) -> dict[str, float]:
        """Trains to ``config.total_kimg`` (or to ``until_kimg``, e.g. to stop early), writing
        stats, samples and checkpoints at their intervals and at the end. Returns the last
        stats record."""
        config = self.config
        stop = min(config.total_kimg, until_kimg) if until_kimg is not None else config.total_kimg
        stop_images = math.ceil(stop * 1000)
        if self.show_progress:
            self._progress = ProgressBar(config.total_kimg, self.kimg)
        self._apply_schedule()  # the initial samples show the starting level of detail
        if self.images_seen == 0:
            self.save_reals()
            self.save_samples("fakes-init.png")
        self._last_log = (time.perf_counter(), self.images_seen)
        record: dict[str, float] = {}
        try:
            while self.images_seen < stop_images:
                before = self.images_seen
                self._means.add(self.train_step())
                after = self.images_seen
                last = after >= stop_images
                if _crossed(before, after, config.log_kimg) or last:
                    record = self._log()
                    if self._progress is not None:
                        losses = {
                            name.removeprefix("loss/"): value
                            for name, value in record.items()
                            if name.startswith("loss/")
                        }
                        self._progress.update(self.kimg, losses)
                elif self._progress is not None:
                    self._progress.update(self.kimg)
                if _crossed(before, after, config.sample_kimg) or last:
                    self.save_samples()
                if _crossed(before, after, config.checkpoint_kimg) or last:
                    self.measure_snapshot(self.save_checkpoint())
        finally:
            if self._progress is not None:
                self._progress.close()
                self._progress = None
        if self.images_seen >= math.ceil(config.total_kimg * 1000) and self.context.is_main:
            export_generator(self.outdir / "generator.safetensors", self.G_ema)
        return record

    def close(self) -> None:
        self.stats.close()
        if self._metrics_log is not None:
            self._metrics_log.close()
