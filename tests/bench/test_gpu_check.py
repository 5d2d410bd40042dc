"""The GPU check (benchmarks/gpu_check.sh and stylegan_fast.bench.gpu_check): the parts that
decide what a GPU run measures and reports, tested without a GPU. The whole script's dry run
(`benchmarks/gpu_check.sh --dry-run OUT`) runs in CI after the tests (.ci/run)."""

import csv
import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from stylegan_fast import _library, _preferences
from stylegan_fast.bench import harness
from stylegan_fast.bench.gpu_check import environment, ops, summary
from stylegan_fast.bench.gpu_check.__main__ import main as gpu_check_main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


def test_script_names_no_bare_python():
    # The GPU image has python3 only: every interpreter call goes through $PYTHON.
    text = SCRIPT.read_text()
    assert re.search(r"(^|[\s'\"(;])python(\s|$)", text) is None
    assert "PYTHON=${PYTHON:-python3}" in text


def test_gpu_cells_cover_every_anchor_row():
    anchors = {
        (r["op"], r["shape"], r["dtype"]) for r in csv.DictReader(open(summary.ANCHORS, newline=""))
    }
    measured = {
        (c.op, c.label, str(c.dtype).removeprefix("torch."))
        for c in ops.cells(dry_run=False)
        if not c.channels_last
    }
    assert anchors <= measured
    assert all(c.shape[0] == ops.GPU_BATCH for c in ops.cells(dry_run=False))
    # channels_last cells: one layer per size class, for every op.
    classes = {
        (c.op, _preferences.size_class_of_plane(c.shape[2] * c.shape[3]))
        for c in ops.cells(dry_run=False)
        if c.channels_last
    }
    assert len(classes) == len(ops.ANCHOR_OPS + ops.OTHER_OPS) * len(_preferences.SIZE_CLASSES)


def test_compile_cells_are_nchw_anchor_ops_middle_layers_first():
    cells = ops.cells(dry_run=False, compile_only=True)
    assert {c.op for c in cells} == set(ops.ANCHOR_OPS)
    assert not any(c.channels_last for c in cells)
    assert cells[0].shape[2] == 128


def _row(op, provider, mode, shape, dtype, us, nbytes=1e9):
    seconds = us * 1e-6
    return harness.Row(op, provider, mode, shape, dtype, us, nbytes / seconds / 1e9, None, None)


def _write_ops_csv(path: Path, rows):
    harness.append_csv(path, rows, {"date": "d", "device": "GPU X"}, 3000.0)
    return list(csv.DictReader(open(path, newline="")))


def test_measured_preferences_replace_only_the_measured_cells(tmp_path):
    rows = []
    # NCHW 512x8 (small): triton faster in both modes; NCHW 256x128 (medium): cuda faster.
    for mode in ("fwd", "fwd+bwd"):
        rows += [
            _row("bias_act", "cuda", mode, "512x8", "float32", 10.0),
            _row("bias_act", "triton", mode, "512x8", "float32", 8.0),
            _row("bias_act", "cuda", mode, "256x128", "float32", 100.0),
            _row("bias_act", "triton", mode, "256x128", "float32", 120.0),
            # upsample2d labels name the output: 64x256 reads a 128² input -> medium.
            _row("upsample2d", "cuda", mode, "128x256", "float16", 50.0),
            _row("upsample2d", "triton", mode, "128x256", "float16", 90.0),
            _row("layer_epilogue", "cuda", mode, "512x64/cl", "float16", 70.0),
            _row("layer_epilogue", "triton", mode, "512x64/cl", "float16", 60.0),
            _row("adain", "cuda", mode, "512x8", "float32", 5.0),  # no triton row: no change
        ]
    records = _write_ops_csv(tmp_path / "ops.csv", rows)
    env = {"device": "GPU X", "date": "2026-12-05", "git_sha": "abc"}
    table = summary.measured_preferences(records, env, _preferences.TABLE)
    assert table[("bias_act", "nchw", "small")].order == ("triton", "cuda")
    assert table[("bias_act", "nchw", "medium")].order == ("cuda", "triton")
    assert table[("upfirdn2d", "nchw", "medium")].order == ("cuda", "triton")
    assert table[("layer_epilogue", "channels_last", "medium")].order == ("triton", "cuda")
    source = table[("bias_act", "nchw", "small")].source
    assert source.startswith("measured on GPU X, 2026-12-05") and "over 2 cells" in source
    changed = {k for k in table if table[k] != _preferences.TABLE[k]}
    assert changed <= {
        ("bias_act", "nchw", "small"),
        ("bias_act", "nchw", "medium"),
        ("upfirdn2d", "nchw", "medium"),
        ("layer_epilogue", "channels_last", "medium"),
    }
    assert table[("adain", "nchw", "small")] == _preferences.TABLE[("adain", "nchw", "small")]
    # The file the GPU run writes loads back as a valid table.
    path = tmp_path / "auto_preferences.json"
    path.write_text(_preferences.dump(table, "test"))
    assert _preferences.load(path) == table


def _full_gpu_run(tmp_path):
    """Rows of every GPU cell for every provider, and e2e rows: a complete run's output."""
    rows = []
    for cell in ops.cells(dry_run=False):
        providers = ("cuda", "triton") if cell.channels_last else ("cuda", "triton", "ref")
        for mode in ops.MODES:
            for p in providers + (("compile",) if not cell.channels_last else ()):
                us = {"cuda": 10.0, "triton": 12.0, "ref": 40.0, "compile": 11.0}[p]
                dtype = str(cell.dtype).removeprefix("torch.")
                rows.append(_row(cell.op, p, mode, cell.label, dtype, us))
    _write_ops_csv(tmp_path / ops.OPS_FILE, rows)
    env = {"device": "GPU X", "copy_gbps": 3000.0, "date": "d", "git_sha": "abc"}
    (tmp_path / environment.ENV_FILE).write_text(json.dumps(env))
    (tmp_path / summary.PHASES_FILE).write_text(
        "".join(f"{name}\tok\t10\t60\t\n" for name in ("env", "build", "tests-cuda", "bench-ops"))
    )
    return env


def test_summary_prints_at_most_60_lines_and_writes_its_files(tmp_path):
    _full_gpu_run(tmp_path)
    printed = []
    assert summary.run(tmp_path, log=printed.append) == 0
    lines = "\n".join(printed).splitlines()
    assert len(lines) <= summary.MAX_PRINTED_LINES
    # 1e9 bytes in 10 us of the best of ours (cuda) against a 3000 GB/s ceiling; 4x eager;
    # 1.1x compile.
    assert any(line.startswith("bias_act") and "3333%/4.0/1.1" in line for line in lines)
    text = (tmp_path / summary.SUMMARY_FILE).read_text()
    assert "**layer_epilogue — fwd+bwd**" in text and "| 512x64/cl | fp16 |" in text
    # The anchors sit beside every anchor row: bias_act fwd fp32 512x8's best peer is compile.
    assert "| 512x8 | fp32 | 10.0 (3333%) |" in text and "compile 7.6" in text
    table = _preferences.load(tmp_path / summary.PREFERENCES_FILE)
    assert all(p.order == ("cuda", "triton") for p in table.values())  # cuda was faster
    assert all(p.source.startswith("measured on GPU X") for p in table.values())


def test_summary_of_an_interrupted_run_says_what_is_missing(tmp_path):
    printed = []
    assert summary.run(tmp_path, log=printed.append) == 0
    out = "\n".join(printed)
    assert "phases: no record" in out and "ops: no rows measured" in out
    assert (tmp_path / summary.PREFERENCES_FILE).exists()


def test_build_status_reuses_only_a_matching_extension(monkeypatch):
    reusable, why = environment.build_status(dry_run=True)
    assert reusable == _library.EXTENSION.loaded, why
    info = dict(_library.EXTENSION.build_info, torch_version="0.0.1")
    fake = dataclasses.replace(_library.EXTENSION, loaded=True, build_info=info)
    monkeypatch.setattr(_library, "EXTENSION", fake)
    reusable, why = environment.build_status(dry_run=True)
    assert not reusable and "built for torch 0.0.1" in why
    info = dict(info, torch_version=torch.__version__, with_cuda=False)
    monkeypatch.setattr(_library, "EXTENSION", dataclasses.replace(fake, build_info=info))
    assert environment.build_status(dry_run=True)[0]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    reusable, why = environment.build_status(dry_run=False)
    assert not reusable and "without CUDA" in why
    info = dict(info, with_cuda=True, cuda_arch_list="8.0;8.6+PTX")
    monkeypatch.setattr(_library, "EXTENSION", dataclasses.replace(fake, build_info=info))
    assert environment.build_status(dry_run=False) == (
        False,
        "built for 8.0;8.6+PTX, this GPU is 9.0",
    )
    info = dict(info, cuda_arch_list="9.0")
    monkeypatch.setattr(_library, "EXTENSION", dataclasses.replace(fake, build_info=info))
    assert environment.build_status(dry_run=False)[0]


def test_a_step_without_a_gpu_says_so(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(RuntimeError, match="no CUDA GPU visible"):
        gpu_check_main(["env", "--out", str(tmp_path)])
