"""End-to-end benchmarks: FLOP counts, the peer model, the quick CPU run and its records, the
README table."""

import csv

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from stylegan_fast import cli, testing
from stylegan_fast.bench.e2e import flops, results, workloads
from stylegan_fast.bench.e2e.peer import PeerDiscriminator, PeerGenerator
from stylegan_fast.commands import bench as command
from stylegan_fast.models import Discriminator, Generator, preset_configs


def _param_count(module):
    return sum(p.numel() for p in module.parameters())


# --- FLOPs ---------------------------------------------------------------------------------


def test_generator_flops_match_a_hand_count_of_the_tiny_preset():
    g, _ = preset_configs("tiny")  # 32², channels 64 at 4-16 px, 32 at 32 px; 64-d z/w
    mapping = 4 * 64 * 64
    styles = 3 * 2 * (64 * 128) + 2 * (64 * 64)
    conv3 = lambda px, cin, cout: px * px * 9 * cin * cout  # noqa: E731
    blur = lambda px, c: px * px * 9 * c  # noqa: E731
    convs = (
        conv3(4, 64, 64)  # 4x4: only layer1 convolves (layer0 styles the constant)
        + 2 * conv3(8, 64, 64) + blur(8, 64)
        + 2 * conv3(16, 64, 64) + blur(16, 64)
        + conv3(32, 64, 32) + conv3(32, 32, 32) + blur(32, 32)
        + 32 * 32 * 32 * 3  # toRGB
    )  # fmt: skip
    assert flops.generator_flops(g) == 2 * (mapping + styles + convs)
    # Fused up-sampling: one 4x4 transposed conv on the input grid instead of 3x3 at 2x.
    fused = flops.generator_flops(g.replace(fused_scale=True))
    saved = sum(conv3(2 * r, cin, 64) - r * r * 16 * cin * 64 for r, cin in ((4, 64), (8, 64)))
    saved += conv3(32, 64, 32) - 16 * 16 * 16 * 64 * 32
    assert flops.generator_flops(g) - fused == 2 * saved


def test_discriminator_flops_match_a_hand_count_of_the_tiny_preset():
    _, d = preset_configs("tiny")  # channels 32 at 32 px, 64 below; nf(0) = 64
    conv3 = lambda px, cin, cout: px * px * 9 * cin * cout  # noqa: E731
    macs = (
        32 * 32 * 3 * 32  # fromRGB
        + conv3(32, 32, 32) + 32 * 32 * 9 * 32 + conv3(32, 32, 64)  # conv0, blur, conv1 + pool
        + conv3(16, 64, 64) + 16 * 16 * 9 * 64 + conv3(16, 64, 64)
        + conv3(8, 64, 64) + 8 * 8 * 9 * 64 + conv3(8, 64, 64)
        + conv3(4, 65, 64) + 16 * 64 * 64 + 64  # mbstd conv, dense, score
    )  # fmt: skip
    assert flops.discriminator_flops(d) == 2 * macs


@pytest.mark.parametrize("fused_scale", ["auto", True])
def test_flop_counts_equal_torch_flop_counter_on_the_peer(fused_scale):
    # Independent count: torch's FlopCounterMode over the aten convolutions and matmuls the
    # plain peer actually runs (its blur is a real depthwise conv; interpolate, pooling and
    # the element-wise ops count nothing there either).
    g, d = preset_configs("tiny", fused_scale=fused_scale)
    G, D = PeerGenerator(g).requires_grad_(False), PeerDiscriminator(d).requires_grad_(False)
    with FlopCounterMode(display=False) as counter:  # (its module tracking needs grad mode)
        img = G(torch.randn(2, g.z_dim), noise_mode="const")
    assert counter.get_total_flops() == 2 * flops.generator_flops(g)
    with FlopCounterMode(display=False) as counter:
        D(img)
    assert counter.get_total_flops() == 2 * flops.discriminator_flops(d)


def test_paper_preset_generator_flops_match_the_h100_anchor():
    # anchors-h100.md counts 45.7 GFLOP/image (256²) and 64.5 (1024²) for the same channels.
    for preset, anchor in (("stylegan-256", 45.7), ("stylegan-1024", 64.5)):
        g, _ = preset_configs(preset)
        assert abs(flops.generator_flops(g) / 1e9 - anchor) < 0.05


def test_train_step_flops_compose_the_forward_counts():
    g, d = preset_configs("tiny")
    G, D = flops.generator_flops(g), flops.discriminator_flops(d)
    assert flops.train_step_flops(g, d, 1) == 4 * G + 15 * D
    assert flops.train_step_flops(g, d, 16) == 4 * G + 9 * D + 6 * D / 16
    assert flops.train_step_flops(g, d, 0) == 4 * G + 9 * D
    with pytest.raises(ValueError, match="r1_every"):
        flops.train_step_flops(g, d, -1)


# --- the peer ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["stylegan-256", "stylegan-1024"])
def test_peer_has_our_parameter_count(preset):
    g, d = preset_configs(preset)
    with torch.device("meta"):
        assert _param_count(PeerGenerator(g)) == _param_count(Generator(g))
        assert _param_count(PeerDiscriminator(d)) == _param_count(Discriminator(d))


@pytest.mark.parametrize("fused_scale", ["auto", True])
def test_peer_computes_our_model_with_our_weights(fused_scale):
    g, d = preset_configs("tiny", fused_scale=fused_scale)
    torch.manual_seed(1)
    G, D = Generator(g, impl="ref").double(), Discriminator(d, impl="ref").double()
    with torch.no_grad():  # move the zero-initialised biases and strengths off zero
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
    PG, PD = PeerGenerator(g).double(), PeerDiscriminator(d).double()
    keys = PG.load_state_dict(G.state_dict(), strict=False)
    assert not keys.missing_keys and keys.unexpected_keys == ["synthesis.lod"]
    keys = PD.load_state_dict(D.state_dict(), strict=False)
    assert not keys.missing_keys and keys.unexpected_keys == ["lod"]
    z = torch.randn(4, g.z_dim, dtype=torch.float64)
    ours = G(z, noise_mode="const")
    torch.testing.assert_close(PG(z, noise_mode="const"), ours, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(PD(ours), D(ours), rtol=1e-9, atol=1e-9)


def test_peer_refuses_what_it_does_not_model():
    g, _ = preset_configs("tiny", c_dim=3)
    with pytest.raises(ValueError, match="unconditional"):
        PeerGenerator(g)


# --- the quick CPU run and its records -----------------------------------------------------


@pytest.fixture
def adam_steps_unchecked(monkeypatch):
    """Adam reads its step count with .item() unless capturable=True, which torch allows on
    CUDA only (the graphed step sets it there): on CPU its step runs outside the check."""
    from torch.utils._python_dispatch import _disable_current_modes

    step = torch.optim.Adam.step

    def unchecked_step(self, *args, **kwargs):
        with _disable_current_modes():
            return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", unchecked_step)


@pytest.mark.parametrize("r1_every", [1, 2])
def test_sync_free_train_step_has_no_host_sync(r1_every, adam_steps_unchecked):
    # What the CUDA-graph train step (provider auto+graph) captures: the same steps with the
    # sync-free style mix. Any .item() in the models, losses, kernels or their backward
    # (including R1's double backward) would break the capture on a GPU; here it raises.
    call = workloads.train_step_call(
        "auto", "tiny", 2, "fp32", False, torch.device("cpu"), r1_every, sync_free=True
    )
    with testing.forbid_host_syncs():
        call(0)
        call(1)
    assert call.steps_per_call == r1_every


def test_graph_train_step_needs_a_gpu():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        workloads.train_step_call("auto+graph", "tiny", 2, "fp32", False, torch.device("cpu"))


def test_quick_e2e_bench_on_cpu_writes_csv_and_markdown(tmp_path, capsys):
    args = ["bench", "--e2e", "--quick", "--save-cpu", "--results-dir", str(tmp_path)]
    args += ["--e2e-provider", "peer", "--e2e-provider", "auto", "--reps", "1", "--warmup", "1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "| G inference | 32² | fp32 | NCHW | peer |" in out
    [csv_path] = tmp_path.glob("*-e2e.csv")
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == results.CSV_FIELDS
        rows = list(reader)
    g, d = preset_configs("tiny")
    expected = {
        "generator": flops.generator_flops(g) / 1e9,
        "train": flops.train_step_flops(g, d, 1) / 1e9,
    }
    assert {(r["workload"], r["provider"]) for r in rows} == {
        (w, p) for w in ("generator", "train") for p in ("peer", "auto")
    }
    for r in rows:
        assert r["torch"] == torch.__version__ and r["preset"] == "tiny" and r["batch"] == "2"
        ms, ips = float(r["ms_per_iter"]), float(r["images_per_s"])
        assert ms > 0 and ips == pytest.approx(2 / (ms / 1e3), rel=1e-3)
        assert float(r["gflop_per_image"]) == pytest.approx(expected[r["workload"]], rel=1e-3)
        tflops = float(r["gflop_per_image"]) * ips / 1e3
        assert float(r["tflops"]) == pytest.approx(tflops, rel=1e-2)
        assert float(r["mfu_pct"]) == pytest.approx(
            100 * float(r["tflops"]) / float(r["matmul_tflops"]), rel=1e-2
        )
        assert r["r1_every"] == ("1" if r["workload"] == "train" else "")
        if r["provider"] == "peer":
            assert float(r["vs_peer"]) == 1
    md = csv_path.with_suffix(".md").read_text()
    assert "Command: `stylegan-fast bench --e2e --quick" in md
    assert "| train step D + G, R1 every step | 32² | fp32 | NCHW | auto |" in md


def test_bench_command_picks_ops_and_end_to_end_parts():
    parser = cli.build_parser()

    def parts(*argv):
        return command._parts(parser.parse_args(["bench", *argv]))

    assert parts() == (True, True)
    assert parts("--ops-only") == (True, False)
    assert parts("--e2e") == (False, True)
    assert parts("--op", "bias_act") == (True, False)  # choosing ops alone: ops only
    assert parts("--op", "bias_act", "--workload", "train") == (True, True)
    with pytest.raises(cli.UsageError, match="not allowed with argument"):
        parser.parse_args(["bench", "--e2e", "--ops-only"])


def test_bench_rejects_a_negative_r1_interval(capsys):
    assert cli.main(["bench", "--e2e", "--r1-every", "-1"]) == 2
    assert "--r1-every must be >= 0" in capsys.readouterr().err


# --- the README table ----------------------------------------------------------------------


def _row(provider, ips, **overrides):
    rate = ips or 1.0  # a failed row overrides the derived fields with None
    values = dict(
        workload="generator", preset="stylegan-256", resolution=256, batch=32,
        precision="bf16", channels_last=False, provider=provider, r1_every="",
        ms_per_iter=32e3 / rate, images_per_s=ips, peak_mem_mib=2048.0, gflop_per_image=45.69,
        tflops=45.69 * rate / 1e3, mfu_pct=10.0, vs_peer=rate / 1000,
    )  # fmt: skip
    values.update(overrides)
    return results.E2ERow(**values)


def test_readme_table_round_trip(tmp_path):
    csv_path = tmp_path / "gpu-e2e.csv"
    env = dict(date="2026-01-01 00:00 UTC", git_sha="abc", device="GPU", threads="")
    env.update(torch="2.13", triton="3.9", stylegan_fast="0.1")
    results.append_csv(csv_path, [_row("peer", 1000.0)], {**env, "run_id": "old"}, 500.0)
    latest = [_row("peer", 1300.0), _row("auto", 4500.0, note="")]
    latest.append(_row("compile", None, ms_per_iter=None, tflops=None, mfu_pct=None,
                       vs_peer=None, note="RuntimeError: no"))  # fmt: skip
    results.append_csv(csv_path, latest, {**env, "run_id": "new"}, 700.0)

    readme = tmp_path / "README.md"
    readme.write_text(
        f"# x\n\nbefore\n{results.README_BEGIN}\nstale\n{results.README_END}\nafter\n"
    )
    table = results.readme_table(csv_path)
    assert results.update_readme(readme, table) is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith("after\n") and "stale" not in text
    inside = text.split(results.README_BEGIN)[1].split(results.README_END)[0]
    assert (
        "| G inference | 256² | autocast bf16 | NCHW | auto | 7.11 | 4500 | 4.5 | 2.00 GiB"
        in inside
    )
    assert "| peer | 24.6 | 1300 |" in inside and "1000" not in inside  # latest run only
    assert "n/a (RuntimeError: no)" in inside and "700 TFLOP/s" in inside
    assert results.update_readme(readme, table) is False  # idempotent
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        results.update_readme(readme, table)


def test_plot_is_written_or_skipped_with_a_message(tmp_path, capsys):
    path = results.plot([_row("peer", 1000.0), _row("auto", 4000.0)], tmp_path / "e2e.png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert path is None and "matplotlib is not installed" in capsys.readouterr().out
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
