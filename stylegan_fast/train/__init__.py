"""Training infrastructure: data, losses, EMA, checkpoints, distributed helpers, progress output.

Modules (each with one job): ``data`` (datasets, sharded sampler), ``sources`` (folder/zip
files), ``images`` (decode, convert, grids), ``prepare_data`` (scan and pack an image folder),
``losses``, ``ema``, ``progressive`` (growing schedule, faded reals), ``checkpoint`` (+
``state_tree``, ``rng``), ``distributed``, ``stats``, ``config`` (``TrainingConfig``),
``loop`` (the trainer). The ``train`` and ``prepare-data`` commands are in
:mod:`stylegan_fast.commands`.

Imports: nothing here imports ``stylegan_fast.models`` at import time, and nothing here ever
imports ``stylegan_fast.tools``, ``metrics`` or ``commands`` (they build on train;
``tests/test_cli.py`` holds this).
"""

from .checkpoint import (
    CheckpointError,
    CheckpointManager,
    export_generator,
    load_checkpoint,
    load_generator,
    save_checkpoint,
)
from .config import TrainingConfig
from .data import BundledFaces, ImageFolderDataset, ShardedSampler, open_dataset
from .ema import GeneratorEMA, ema_beta, update_ema
from .images import ImageError, save_image_grid
from .loop import Trainer
from .losses import StyleGANLoss
from .progressive import ProgressiveSchedule
from .rng import capture_rng_state, restore_rng_state
from .stats import ProgressBar, RunningMeans, StatsWriter

__all__ = [
    "BundledFaces",
    "CheckpointError",
    "CheckpointManager",
    "GeneratorEMA",
    "ImageError",
    "ImageFolderDataset",
    "ProgressBar",
    "ProgressiveSchedule",
    "RunningMeans",
    "ShardedSampler",
    "StatsWriter",
    "StyleGANLoss",
    "Trainer",
    "TrainingConfig",
    "capture_rng_state",
    "ema_beta",
    "export_generator",
    "load_checkpoint",
    "load_generator",
    "open_dataset",
    "restore_rng_state",
    "save_checkpoint",
    "save_image_grid",
    "update_ema",
]
