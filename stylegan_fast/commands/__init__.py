"""Every ``stylegan-fast`` command, one module each; ``stylegan_fast.cli`` builds its parser
from :data:`COMMANDS` (in this order) and does nothing else.

A command module holds the command-line glue only and exposes:

- ``HELP``: its line in ``stylegan-fast --help``;
- ``add_arguments(parser)``: its options, on the ``argparse`` sub-parser;
- ``run(args) -> int``: does the work and returns the exit status. A bad argument or input
  raises ``ValueError`` (or ``NotImplementedError``) with a message that names the option; the
  CLI prints it as one line, ``stylegan-fast <command>: error: <message>``, and exits with 2.

What a command computes or draws lives in the library package it calls, so it works from
Python too: ``train`` (training, data, checkpoints), ``tools`` (figures of a generator),
``metrics``, ``bench``. Options the generation commands share are in ``_arguments``.

Adding a command ``foo-bar``: write ``commands/foo_bar.py`` with the three names above, add
``"foo-bar": foo_bar`` to :data:`COMMANDS`, and test it through ``stylegan_fast.cli.main``.

Imports: only ``stylegan_fast.cli`` imports this package; it may import any other
(``tests/test_cli.py`` holds the rule)."""

from . import (
    bench,
    generate,
    import_,
    info,
    interpolate,
    metrics,
    mix,
    noise,
    prepare_data,
    project,
    train,
)

# name on the command line -> module; the order is the order of `stylegan-fast --help`.
COMMANDS = {
    "info": info,
    "bench": bench,
    "prepare-data": prepare_data,
    "train": train,
    "import": import_,
    "generate": generate,
    "mix": mix,
    "interpolate": interpolate,
    "metrics": metrics,
    "noise": noise,
    "project": project,
}

__all__ = ["COMMANDS"]
