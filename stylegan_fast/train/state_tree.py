"""A lossless split of nested training state into JSON and named tensors, so it can be stored
without pickle (tensors in safetensors, the rest in its JSON header).

A tree is None, bool, int, float, str, torch.Tensor, or a list, tuple or dict of trees (dict
keys str or int, as in ``state_dict()`` and ``Optimizer.state_dict()``). In the JSON skeleton
tensors become ``{"$tensor": name}``, tuples ``{"$tuple": [...]}``, and dicts whose keys are not
all plain strings ``{"$dict": [[key, value], ...]}``, so decoding gives back equal types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

_MARKERS = ("$tensor", "$tuple", "$dict", "$float")


def encode(tree) -> tuple[object, dict[str, torch.Tensor]]:
    """Splits ``tree`` into ``(skeleton, tensors)``: a JSON-serialisable skeleton and the
    tensors it refers to by name (names follow the path, e.g. ``"G/mapping.fc0.weight"``).

    Raises:
        TypeError: naming the path of a value that is not part of a tree.
    """
    tensors: dict[str, torch.Tensor] = {}

    def visit(value, path: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            # JSON has no NaN/inf; keep them exact, and as floats.
            return float(value) if math.isfinite(value) else {"$float": repr(float(value))}
        if isinstance(value, torch.Tensor):
            name = path or "tensor"
            if name in tensors:
                suffix = 1
                while f"{name}#{suffix}" in tensors:
                    suffix += 1
                name = f"{name}#{suffix}"
            tensors[name] = value
            return {"$tensor": name}
        if isinstance(value, tuple):
            return {
                "$tuple": [visit(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(value)]
            }
        if isinstance(value, list):
            return [visit(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            plain = all(type(k) is str and not k.startswith("$") for k in value)
            items = []
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise TypeError(
                        f"state at {path or '<root>'!r}: dict keys must be str or int, "
                        f"got {type(key).__name__}"
                    )
                items.append((key, visit(item, f"{path}/{key}" if path else str(key))))
            return dict(items) if plain else {"$dict": [[k, v] for k, v in items]}
        raise TypeError(
            f"state at {path or '<root>'!r} is a {type(value).__name__}; checkpoints hold "
            "tensors, numbers, strings, None and lists/tuples/dicts of them"
        )

    return visit(tree, ""), tensors


def decode(skeleton, tensors: Mapping[str, torch.Tensor]):
    """Inverse of :func:`encode`.

    Raises:
        ValueError: for a skeleton that refers to a missing tensor or is malformed.
    """

    def visit(value):
        if isinstance(value, list):
            return [visit(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in _MARKERS:
            marker, content = next(iter(value.items()))
            if marker == "$tensor":
                if content not in tensors:
                    raise ValueError(f"state refers to tensor {content!r}, which is missing")
                return tensors[content]
            if marker == "$tuple":
                return tuple(visit(v) for v in content)
            if marker == "$float":
                return float(content)
            return {k: visit(v) for k, v in content}
        return {k: visit(v) for k, v in value.items()}

    return visit(skeleton)
