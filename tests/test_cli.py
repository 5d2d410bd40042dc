"""The stylegan-fast command line (its parser built from the commands registry, and which
package may import which), and the benchmark harness behind `bench`."""

import ast
import csv
import re
from pathlib import Path

import torch

import stylegan_fast
from stylegan_fast import cli
from stylegan_fast.bench import BENCHES, harness
from stylegan_fast.commands import COMMANDS

PACKAGE = Path(stylegan_fast.__file__).parent


def test_info_lists_every_op_with_its_backends(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "extension     stylegan_fast._C loaded" in out
    for op in {bench.backend_op or bench.op for bench in BENCHES.values()}:
        assert f"  {op}: auto -> " in out
    assert "STYLEGAN_FAST_IMPL" in out


def test_bench_quick_writes_csv_and_markdown(tmp_path, capsys):
    args = [
        "bench",
        "--quick",
        "--op",
        "bias_act",
        "--mode",
        "fwd",
        "--mode",
        "fwd+bwd",
        "--reps",
        "2",
        "--warmup",
        "1",
        "--results-dir",
        str(tmp_path),
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "**bias_act — fwd**" in out
    [csv_path] = tmp_path.glob("*.csv")
    rows = list(csv.DictReader(open(csv_path)))
    providers = {r["provider"] for r in rows}
    assert {"ref", "cpp"} <= providers and "compile" not in providers  # quick CPU: no compile
    assert {r["mode"] for r in rows} == {"fwd", "fwd+bwd"}
    for r in rows:
        assert (
            float(r["median_us"]) > 0 and float(r["gbps"]) > 0 and r["torch"] == torch.__version__
        )
    md = csv_path.with_suffix(".md").read_text()
    assert "Command: `stylegan-fast bench --quick" in md and "| 512x8 | float32 |" in md


def test_bench_rejects_bad_arguments(capsys):
    assert cli.main(["bench", "--dtype", "fp8"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fp8'" in err and err.count("\n") == 1, err  # no usage block


def test_a_provider_that_raises_is_recorded_not_fatal():
    """torch.compile (torch <= 2.11) raises on R1's double backward: the row says so."""
    bench = BENCHES["bias_act"]
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)

    def raising_call(inputs):
        raise RuntimeError("double backward is not supported\nsecond line")

    cell = harness.CellInputs(
        "3x4", torch.float32, torch.device("cpu"), [[x, b]] * 3, [torch.randn(2, 3, 4, 4)] * 3, x
    )
    row = harness.time_one(bench, raising_call, "compile", "r1", cell, 1.0, 0, 1)
    assert row.median_us is None
    assert row.note == "RuntimeError: double backward is not supported"


def test_markdown_table_shows_speedup_over_eager():
    rows = [
        harness.Row("op", "ref", "fwd", "8x8", "float32", 100.0, 1.0, 10.0, None),
        harness.Row("op", "cpp", "fwd", "8x8", "float32", 50.0, 2.0, 20.0, None),
    ]
    table = harness.markdown_table(rows)
    assert "| 8x8 | float32 | 100.0 (10%) | 50.0 (20%) 2.00× |" in table


def test_the_parser_is_built_from_the_commands_registry(capsys):
    for name, command in COMMANDS.items():
        assert command.HELP and callable(command.add_arguments) and callable(command.run), name
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no usage block
    listed = re.findall(r"[\w-]+", err.split("choose from", 1)[1].split(")")[0])
    assert listed == list(COMMANDS) == [
        "info", "bench", "prepare-data", "train", "import", "generate", "mix", "interpolate",
        "metrics", "noise", "project",
    ]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _stylegan_fast_imports(path: Path) -> set[str]:
    """The stylegan_fast modules ``path`` imports, at its top or inside a function (a lazy
    import is a dependency too), relative imports resolved; ``from package import name``
    counts as importing ``package.name`` when that is a module, else ``package``."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if _is_module(name) else base)
    return {name for name in found if name.split(".")[0] == "stylegan_fast"}


# Which package may import which, among the ones the command line sits on. train is the
# bottom: tools, metrics and commands build on it, so it imports none of them. metrics takes
# any generator and any images, so it needs neither train nor tools. tools takes a generator
# object and imports from train only train.images, the training data's pixel convention
# ([-1, 1] <-> uint8) that every figure must invert exactly; loading a generator from a file
# is the commands' job. commands (the command-line glue) may import anything but cli, and only
# cli imports commands. So no two of these import each other both ways.
MUST_NOT_IMPORT = {
    "stylegan_fast.train": ("stylegan_fast.tools", "stylegan_fast.metrics"),
    "stylegan_fast.metrics": ("stylegan_fast.train", "stylegan_fast.tools"),
    "stylegan_fast.tools": ("stylegan_fast.train", "stylegan_fast.metrics"),
    "stylegan_fast.commands": ("stylegan_fast.cli",),
}
ALLOWED = {"stylegan_fast.tools": ("stylegan_fast.train.images",)}
ONLY_CLI_IMPORTS = ("stylegan_fast.commands", "stylegan_fast.cli")


def _within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_import_direction_between_train_tools_metrics_and_commands():
    edges = {
        (_module_name(path), imported)
        for path in sorted(PACKAGE.rglob("*.py"))
        for imported in _stylegan_fast_imports(path)
    }
    # The scan sees relative imports, imports inside functions, `from package import module`.
    assert ("stylegan_fast.tools._common", "stylegan_fast.train.images") in edges
    assert ("stylegan_fast.train.checkpoint", "stylegan_fast.models") in edges
    assert ("stylegan_fast.commands.prepare_data", "stylegan_fast.train.images") in edges
    wrong = []
    for importer, imported in sorted(edges):
        if _within(imported, ONLY_CLI_IMPORTS) and not _within(importer, ONLY_CLI_IMPORTS):
            wrong.append((importer, imported))
        for package, forbidden in MUST_NOT_IMPORT.items():
            if (
                _within(importer, [package])
                and _within(imported, forbidden)
                and not _within(imported, ALLOWED.get(package, ()))
            ):
                wrong.append((importer, imported))
    assert not wrong, wrong
