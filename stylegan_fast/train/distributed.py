"""Multi-process training under ``torchrun``: process-group setup from its environment, rank
helpers, rank-0-only guards, and the two collectives data-parallel training needs (broadcast of
the initial weights, averaging of gradients).

Gradients are averaged with an explicit all-reduce after backward rather than through a
``DistributedDataParallel`` wrapper: StyleGAN calls ``G.mapping`` (twice with style mixing) and
``G.synthesis`` separately, and R1 differentiates through D twice, neither of which goes through
one ``forward`` call of a wrapper. One flattened all-reduce per network per step gives the same
averaged gradients.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``, and the
    process-group ``backend`` (None when running as a single process)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"environment variable {name} is not set (launch with torchrun)")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from None


def init_distributed(
    device: str | torch.device | None = None, timeout: datetime.timedelta | None = None
) -> DistributedContext:
    """Joins the process group ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); without ``WORLD_SIZE``
    (or with 1) it is a single process and no group is created.

    Args:
        device: "cuda", "cpu", or None (CUDA when available). With CUDA, each process takes
            device ``cuda:LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
        timeout: how long collectives wait for the other ranks (None: torch's default).
    """
    device_type = torch.device(device).type if device is not None else None
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")

    world_size = _env_int("WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world_size}")
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={world_size}), got {rank}")
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices"
            )
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if world_size == 1:
        return DistributedContext(0, 1, local_rank, torch_device, None)

    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(f"distributed run (WORLD_SIZE={world_size}) but {missing} not set")
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    if not dist.is_initialized():
        options = {} if timeout is None else {"timeout": timeout}
        dist.init_process_group(
            backend, init_method="env://", rank=rank, world_size=world_size, **options
        )
    return DistributedContext(rank, world_size, local_rank, torch_device, backend)


def shutdown() -> None:
    """Leaves the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that logs and writes files."""
    return get_rank() == 0


def rank_zero_only(function: Callable) -> Callable:
    """Decorator: ``function`` runs on rank 0 only; other ranks get None."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs) if is_main_process() else None

    return wrapper


@rank_zero_only
def print0(*args, **kwargs) -> None:
    """``print`` on rank 0 only."""
    print(*args, **kwargs)


def barrier() -> None:
    if is_initialized():
        dist.barrier()


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copies ``src``'s parameters and buffers to every rank (a no-op in a single process), so
    all ranks start from the same weights whatever their seeds."""
    if not is_initialized():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=src)


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replaces each ``p.grad`` with its mean over ranks (one all-reduce per dtype).

    A parameter without a gradient on this rank contributes zeros (and gets the average), so
    every rank passes the same list and all collectives match.
    """
    parameters = [p for p in parameters if p.requires_grad]
    world_size = get_world_size()
    if world_size == 1 or not parameters:
        return
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p in parameters:
        by_dtype.setdefault(p.dtype, []).append(p)
    for group in by_dtype.values():
        for p in group:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat /= world_size
        offset = 0
        for p in group:
            numel = p.numel()
            p.grad.copy_(flat[offset : offset + numel].view_as(p.grad))
            offset += numel


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks (a new tensor; ``tensor`` itself in one process)."""
    if not is_initialized():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total / get_world_size()


def all_gather_objects(value) -> list:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (``[value]`` in one process).
    For small Python data such as each rank's RNG state before a checkpoint."""
    if not is_initialized():
        return [value]
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered
