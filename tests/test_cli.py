"""The stylegan-fast command line and the benchmark harness behind `bench`."""

import csv

import torch

from stylegan_fast import cli
from stylegan_fast.bench import BENCHES, harness


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

    row = harness.time_one(
        bench,
        raising_call,
        "compile",
        "r1",
        "3x4",
        torch.float32,
        torch.device("cpu"),
        [[x, b]] * 3,
        [torch.randn(2, 3, 4, 4)] * 3,
        None,
        1.0,
        0,
        1,
    )
    assert row.median_us is None
    assert row.note == "RuntimeError: double backward is not supported"


def test_markdown_table_shows_speedup_over_eager():
    rows = [
        harness.Row("op", "ref", "fwd", "8x8", "float32", 100.0, 1.0, 10.0, None),
        harness.Row("op", "cpp", "fwd", "8x8", "float32", 50.0, 2.0, 20.0, None),
    ]
    table = harness.markdown_table(rows)
    assert "| 8x8 | float32 | 100.0 (10%) | 50.0 (20%) 2.00× |" in table
