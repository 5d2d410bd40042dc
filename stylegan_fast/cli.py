"""The ``stylegan-fast`` command line: a parser built from
:data:`stylegan_fast.commands.COMMANDS`, usage errors as one line, dispatch to the command's
``run``. The commands are in ``stylegan_fast/commands/``."""

from __future__ import annotations

import argparse
import sys

from stylegan_fast.commands import COMMANDS


class UsageError(Exception):
    """A command line argparse refused; main() prints it as one line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block before its error and exits; a user with a typo
    # needs the one line that says what is wrong (--help has the rest).
    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stylegan-fast",
        description="Fused StyleGAN kernels: inspect backends, benchmark ops.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        p = subparsers.add_parser(name, help=command.HELP)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    args.argv = argv
    try:
        return args.func(args)
    except (ValueError, NotImplementedError) as exc:
        # Bad arguments get one clear line, not a traceback.
        print(f"stylegan-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
