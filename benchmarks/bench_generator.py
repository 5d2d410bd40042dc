"""Generator throughput (images/s): eager reference vs the fused backends vs CUDA-graph
replay, at the paper's resolutions. `python benchmarks/bench_generator.py --help`.

Providers: ``ref`` (eager, impl="ref"), ``auto`` (eager, fused backends), ``ref+graph`` and
``auto+graph`` (the same captured in a CUDA graph by ``Generator.compile_graph``; CUDA only),
``compile`` (``torch.compile`` of the fused model, opt-in: minutes of compilation). Each
timed rep maps and synthesizes one batch of fresh-from-buffer z (const noise, psi 1) under
``torch.no_grad``. CUDA runs append to ``benchmarks/results/<device>-generator.csv``; CPU
runs print only unless ``--record`` is given (CPU timings on a shared machine are noise).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from stylegan_fast.bench import harness
from stylegan_fast.models import Generator

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
PROVIDERS = ("ref", "auto", "ref+graph", "auto+graph", "compile")
CSV_FIELDS = [
    "date",
    "git_sha",
    "device",
    "threads",
    "torch",
    "stylegan_fast",
    "preset",
    "resolution",
    "batch",
    "dtype",
    "provider",
    "median_ms",
    "images_per_s",
    "peak_mem_mib",
    "note",
]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset",
        action="append",
        help="repeatable; default stylegan-256 and stylegan-1024 on CUDA, tiny on CPU",
    )
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument(
        "--dtype",
        action="append",
        choices=sorted(DTYPES),
        help="autocast dtype, repeatable (default fp32, and fp16 on CUDA)",
    )
    p.add_argument(
        "--provider",
        action="append",
        choices=PROVIDERS,
        help="repeatable (default: all the device runs, but compile)",
    )
    p.add_argument("--batch", type=int, default=None, help="default 16 (CUDA), 4 (CPU)")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--record", action="store_true", help="also record CPU runs")
    p.add_argument("--no-record", action="store_true", help="print only")
    return p.parse_args(argv)


def make_call(G: Generator, provider: str, batch: int, autocast_dtype, device):
    """A function of the rep index that generates one batch."""
    impl = "ref" if provider.startswith("ref") else "auto"
    G.set_impl(impl)
    zs = torch.randn(8, batch, G.z_dim, device=device)  # cycled: no RNG in the timed region
    if provider.endswith("+graph"):
        graphed = G.compile_graph(batch, autocast_dtype=autocast_dtype, noise_mode="const")
        return lambda i: graphed(zs[i % 8], clone=False)
    model = torch.compile(G, fullgraph=True) if provider == "compile" else G

    def call(i):
        with (
            torch.no_grad(),
            torch.autocast(
                device.type,
                dtype=autocast_dtype or torch.float32,
                enabled=autocast_dtype is not None,
            ),
        ):
            return model(zs[i % 8], noise_mode="const")

    return call


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    presets = args.preset or (["stylegan-256", "stylegan-1024"] if cuda else ["tiny"])
    dtypes = args.dtype or (["fp32", "fp16"] if cuda else ["fp32"])
    providers = args.provider or [p for p in PROVIDERS if p != "compile" and (cuda or "+" not in p)]
    batch = args.batch or (16 if cuda else 4)
    if not cuda and any("+graph" in p for p in providers):
        print("error: the +graph providers need a CUDA device", file=sys.stderr)
        return 2
    env = harness.environment(device)
    rows = []
    print(f"{env['device']} | torch {env['torch']} | batch {batch}")
    print(f"{'preset':>14} {'dtype':>5} {'provider':>11} {'ms/batch':>10} {'images/s':>10}")
    for preset in presets:
        torch.manual_seed(0)
        G = Generator.from_preset(preset).to(device).eval()
        for dtype_name in dtypes:
            baseline = None
            for provider in providers:
                if cuda:
                    torch.cuda.reset_peak_memory_stats(device)
                call = make_call(G, provider, batch, DTYPES[dtype_name], device)
                seconds = harness.time_reps(call, device, args.warmup, args.reps)
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
                ips = batch / seconds
                baseline = baseline or (ips if provider == "ref" else None)
                note = f"{ips / baseline:.2f}x ref" if baseline else ""
                print(
                    f"{preset:>14} {dtype_name:>5} {provider:>11} {seconds * 1e3:10.2f} "
                    f"{ips:10.1f}  {note}"
                )
                rows.append(
                    {
                        **{k: env.get(k, "") for k in CSV_FIELDS},
                        "preset": preset,
                        "resolution": G.resolution,
                        "batch": batch,
                        "dtype": dtype_name,
                        "provider": provider,
                        "median_ms": round(seconds * 1e3, 3),
                        "images_per_s": round(ips, 1),
                        "peak_mem_mib": "" if peak is None else round(peak, 1),
                        "note": note,
                    }
                )
        del G
    if args.no_record or not (cuda or args.record):
        return 0
    path = args.results_dir / f"{harness.device_slug(device)}-generator.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"appended {len(rows)} rows to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
