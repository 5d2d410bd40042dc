"""The base of :class:`Generator` and :class:`Discriminator`: a model built from one
configuration dataclass, given as such, as its ``to_dict()`` or as a preset name."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

from ..nn import FusedModule

_Model = TypeVar("_Model", bound="ConfiguredModel")


class ConfiguredModel(FusedModule):
    """Keeps a validated copy of its configuration as ``config``, so that checkpoints can
    store ``model.config.to_dict()`` and rebuild the model from the file alone.

    Subclasses set ``CONFIG`` (the configuration dataclass) and ``PRESET_CONFIG`` (preset
    name and overrides -> configuration).
    """

    CONFIG: type
    PRESET_CONFIG: Callable

    def _keep_config(self, config):
        """``config`` (None: the defaults) validated; a deep copy is kept as ``self.config``."""
        config = self.CONFIG() if config is None else config
        if not isinstance(config, self.CONFIG):
            raise TypeError(
                f"{type(self).__name__}: config must be a {self.CONFIG.__name__}, "
                f"got {type(config)}"
            )
        config.validate()
        self.config = copy.deepcopy(config)
        return config

    @classmethod
    def from_config(cls: type[_Model], config, *, impl: str = "auto") -> _Model:
        """A new model for ``config`` (a ``CONFIG`` or its ``to_dict()``)."""
        if isinstance(config, dict):
            config = cls.CONFIG.from_dict(config)
        return cls(config, impl=impl)

    @classmethod
    def from_preset(cls: type[_Model], name: str, *, impl: str = "auto", **overrides) -> _Model:
        """A new model from preset ``name`` with config ``overrides`` (e.g. ``c_dim=10``)."""
        return cls(cls.PRESET_CONFIG(name, **overrides), impl=impl)
