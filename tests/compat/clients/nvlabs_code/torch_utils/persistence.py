"""Stand-in for NVlabs' torch_utils.persistence (install() must leave it to the user)."""

import types

persistent_classes = []


def persistent_class(cls):
    """Registers ``cls`` (theirs also records its module's source for network pickles)."""
    persistent_classes.append(cls.__qualname__)
    return cls


def module_from_source(source, name="_imported_module"):
    """What loading a network pickle does: runs the networks module's stored source."""
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module
