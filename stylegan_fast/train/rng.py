"""Capture and restore every random number generator a training run draws from, as plain
tensors and numbers (no pickled objects), so a resumed run draws the same numbers."""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping

import numpy as np
import torch


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict:
    """The states of torch's CPU generator, every CUDA device's generator (when CUDA is
    available), numpy's global generator, Python's ``random``, and the named
    ``generators`` the caller owns.

    Returns a dict of tensors, ints, floats and strings, as :func:`checkpoint.save_checkpoint`
    stores them.
    """
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch_cpu": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "generators": {},
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = list(torch.cuda.get_rng_state_all())
    for name, generator in (generators or {}).items():
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generators[{name!r}] must be a torch.Generator, got {type(generator).__name__}"
            )
        state["generators"][name] = generator.get_state()
    return state


def restore_rng_state(
    state: Mapping, generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Sets every generator captured by :func:`capture_rng_state` back to its state.

    ``generators`` must name the same generators as at capture. CUDA states are restored when
    CUDA is available with the same device count; a CPU-only process ignores them (a run
    continues bit-exactly only on the kind of machine it was saved on); a different device
    count leaves them as they are, with a warning.

    Raises:
        ValueError: for a state that is not one of :func:`capture_rng_state`, or generator
            names that differ from the captured ones.
    """
    required = ("torch_cpu", "numpy", "python", "generators")
    if not isinstance(state, Mapping) or any(key not in state for key in required):
        raise ValueError(f"not an RNG state from capture_rng_state (needs keys {required})")
    saved = state["generators"]
    given = dict(generators or {})
    if set(saved) != set(given):
        raise ValueError(
            f"RNG state holds generators {sorted(saved)} but {sorted(given)} were given"
        )
    torch.set_rng_state(state["torch_cpu"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (
            python_state["version"],
            tuple(int(v) for v in python_state["internal"].tolist()),
            python_state["gauss_next"],
        )
    )
    cuda_states = state.get("torch_cuda")
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn(
                f"RNG state holds {len(cuda_states)} CUDA generators but this process sees "
                f"{torch.cuda.device_count()} CUDA devices: CUDA generators not restored",
                stacklevel=2,
            )
    for name, generator in given.items():
        generator.set_state(saved[name])
