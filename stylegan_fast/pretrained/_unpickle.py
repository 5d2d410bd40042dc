"""A restricted unpickler for NVlabs' TensorFlow network pickles.

``pickle.load`` calls whatever callables a file names (``os.system``, ``builtins.eval``, ...),
and NVlabs' own loader then ``exec``\\ s the Python source stored in the file. Here a pickle may
name only the globals an official StyleGAN1 file needs, each mapped to something that cannot
run code from the file:

- ``dnnlib.tflib.network.Network`` -> :class:`NetworkStandIn`, which only keeps the state dict
  it is given (its ``build_module_src`` stays an inert string);
- numpy's array and scalar reconstruction (``numpy.core.multiarray`` in 2019 files,
  ``numpy._core.multiarray`` since numpy 2): ``_reconstruct``, ``scalar``, ``numpy.dtype``,
  ``numpy.ndarray`` — numpy's own functions, which build arrays from bytes and nothing else
  (the only class they can be given is ``numpy.ndarray``);
- ``collections.OrderedDict``;
- ``_codecs.encode``, which protocol-2 pickles written by Python 3 use for every ``bytes``
  object (an array's raw data among them), as ``encode(text, "latin1")``: mapped to a
  function that does exactly that and nothing else (no codec lookup).

Anything else, persistent ids, or a file that is empty, truncated or not a pickle, raises
:class:`PickleRefused` with one line naming what was found.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["NetworkStandIn", "PickleRefused", "restricted_load"]


class PickleRefused(ValueError):
    """A file that the restricted unpickler will not load (the message is one line)."""


class NetworkStandIn:
    """What a pickled ``dnnlib.tflib.network.Network`` becomes: its state dict, kept as given
    (``state``), with none of the original class's behaviour (that class executes
    ``build_module_src``; this one never looks at it)."""

    __slots__ = ("state",)

    def __setstate__(self, state) -> None:
        self.state = state

    def __repr__(self) -> str:
        state = getattr(self, "state", None)
        name = state.get("name") if isinstance(state, dict) else None
        return f"NetworkStandIn(name={name!r})"


def _latin1_bytes(text, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of ``bytes`` use it, and only that: the real
    one looks up any codec by name."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PickleRefused(
            f"the pickle calls _codecs.encode with a {type(text).__name__} and encoding "
            f"{_short(repr(encoding))}; only latin1 text (protocol-2 bytes) is accepted"
        )
    return text.encode("latin1")


# numpy's reconstruction functions, taken from numpy's own pickling so that whatever module
# this numpy keeps them in (numpy.core before 2.0, numpy._core since), these are the real ones.
_RECONSTRUCT = np.ndarray((0,), np.float32).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]

ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("dnnlib.tflib.network", "Network"): NetworkStandIn,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_bytes,
}

_MAX_SHOWN = 60  # characters of a name or message quoted in an error


def _short(text) -> str:
    """One line, at most ``_MAX_SHOWN`` characters (names in a hostile file can be anything)."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise PickleRefused(
                f"the pickle names {_short(module)}.{_short(name)}, which a StyleGAN1 network "
                "pickle does not use; refusing to load it (nothing from the file was run)"
            )
        return target

    def persistent_load(self, pid):
        raise PickleRefused(
            f"the pickle refers to an external object (persistent id {_short(repr(pid))}); "
            "StyleGAN1 network pickles have none; refusing to load it"
        )


def _describe_magic(head: bytes) -> str | None:
    """A name for a file that is plainly not a pickle, from its first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (e.g. a torch.save checkpoint), not a pickle"
    if len(head) >= 9 and head[8:9] == b"{" and head[:1] != b"\x80":
        return "a safetensors file, not a pickle"
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8"):
        return "an image, not a pickle"
    if head.startswith((b"<", b"{", b"#")):
        return "a text file, not a pickle"
    return None


def restricted_load(file: str | Path | BinaryIO, *, what: str | None = None):
    """Unpickles ``file`` (a path or a binary file object) allowing only
    :data:`ALLOWED_GLOBALS`.

    Args:
        file: the pickle.
        what: how errors name the file (default: the path, or ``"the pickle"``).

    Returns:
        The unpickled object (networks are :class:`NetworkStandIn`, arrays numpy arrays).

    Raises:
        PickleRefused: a global outside the allowed set, a persistent id, an empty or
            truncated file, or bytes that are not a pickle; one line, naming what was found.
        OSError: the file cannot be read.
    """
    if isinstance(file, (str, Path)):
        with open(file, "rb") as stream:
            return _load_stream(stream, what or str(file))
    return _load_stream(file, what or "the pickle")


def _load_stream(stream: BinaryIO, what: str):
    # Unpickled from the stream, not from a copy in memory: official files are 300 MB.
    start = stream.tell()
    head = stream.read(16)
    if not head:
        raise PickleRefused(f"{what}: the file is empty")
    kind = _describe_magic(head)
    if kind is not None:
        raise PickleRefused(f"{what}: {kind}")
    stream.seek(start)
    try:
        return _RestrictedUnpickler(stream).load()
    except PickleRefused as error:
        raise PickleRefused(f"{what}: {error}") from None
    except EOFError:
        raise PickleRefused(f"{what}: the pickle is truncated (it ends early)") from None
    except pickle.UnpicklingError as error:
        message = str(error)
        if "truncated" in message:
            message = "the pickle is truncated (it ends early)"
            raise PickleRefused(f"{what}: {message}") from None
        raise PickleRefused(f"{what}: not a readable pickle ({_short(message)})") from None
    except Exception as error:  # noqa: BLE001 - malformed input surfaces as anything
        raise PickleRefused(
            f"{what}: not a readable pickle ({type(error).__name__}: {_short(error)})"
        ) from None
