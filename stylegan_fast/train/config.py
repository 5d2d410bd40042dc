"""The hyper-parameters of a training run (:class:`TrainingConfig`) and the mixed-precision
modes it accepts. Kept apart from the trainer (``loop``) because the ``train`` command, the
checkpoints (which store it as JSON, so ``Trainer.resume`` can warn about options that
differ) and the tests build and read it without running a loop."""

from __future__ import annotations

import dataclasses
import json

import torch

from .losses import LOSSES

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# The main job's training settings (the tiny preset on the bundled faces, a few CPU minutes):
# the ``train`` command's defaults, and the "main" setting of the quality runs
# (``stylegan_fast.bench.quality``), so both read them from here.
MAIN_JOB = dict(
    batch=8,
    kimg=8.0,
    lr=0.002,
    r1_gamma=1.0,
    r1_interval=4,
    ema_kimg=0.5,
    lod_kimg=1.5,
    snap=2.0,
)


@dataclasses.dataclass
class TrainingConfig:
    """Hyper-parameters of a run (StyleGAN's defaults where it has one).

    Sizes: ``batch_size`` is the global batch per step; each rank processes
    ``batch_size / world_size`` images per step in rounds of ``batch_gpu`` (gradient
    accumulation; None: one round).

    The mapping network's learning-rate multiplier (0.01) is not set here: the models'
    equalized-lr layers apply it (weights stored divided by it, scaled by it at run time), so
    one Adam learning rate per network gives the mapping its smaller effective rate.
    ``lr_per_resolution`` applies to both networks, as in StyleGAN.

    ``freeze_d``: FreezeD, the discriminator's fromRGB and ``freeze_d`` highest-resolution
    blocks held fixed (see :mod:`freeze`).
    """

    total_kimg: float = 25_000.0
    batch_size: int = 32
    batch_gpu: int | None = None
    loss: str = "logistic"
    r1_gamma: float = 10.0
    r1_interval: int = 1
    style_mixing_prob: float = 0.9
    wgan_lambda: float = 10.0
    wgan_epsilon: float = 0.001
    wgan_target: float = 1.0
    g_lr: float = 0.001
    d_lr: float = 0.001
    lr_per_resolution: dict[int, float] | None = None
    adam_betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    initial_resolution: int = 8
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    reset_optimizer_on_new_lod: bool = True
    ema_half_life_kimg: float = 10.0
    ema_rampup: float | None = None
    precision: str = "fp32"
    seed: int = 0
    data_workers: int = 0
    log_kimg: float = 1.0
    sample_kimg: float = 10.0
    checkpoint_kimg: float = 10.0
    keep_checkpoints: int | None = 3
    sample_grid: tuple[int, int] = (8, 4)
    freeze_d: int = 0

    def __post_init__(self):
        if self.lr_per_resolution is not None:
            self.lr_per_resolution = {int(k): float(v) for k, v in self.lr_per_resolution.items()}
        self.adam_betas = tuple(self.adam_betas)
        self.sample_grid = tuple(self.sample_grid)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {tuple(PRECISIONS)}, got {self.precision!r}"
            )
        for name in ("batch_size", "r1_interval", "seed", "data_workers", "freeze_d"):
            value = getattr(self, name)
            minimum = 0 if name in ("seed", "data_workers", "freeze_d") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        if self.batch_gpu is not None and (
            isinstance(self.batch_gpu, bool)
            or not isinstance(self.batch_gpu, int)
            or self.batch_gpu < 1
        ):
            raise ValueError(f"batch_gpu must be None or a positive int, got {self.batch_gpu!r}")
        for name in (
            "total_kimg",
            "g_lr",
            "d_lr",
            "ema_half_life_kimg",
            "log_kimg",
            "sample_kimg",
            "checkpoint_kimg",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if len(self.sample_grid) != 2 or any(
            not isinstance(v, int) or v < 1 for v in self.sample_grid
        ):
            raise ValueError(
                f"sample_grid must be (cols, rows) of positive ints, got {self.sample_grid!r}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        return cls.from_dict(json.loads(text))
