"""Benchmark noise_injection: `python benchmarks/bench_noise_injection.py --help`."""

import sys

from stylegan_fast.bench import main

if __name__ == "__main__":
    sys.exit(main(default_ops=["noise_injection"]))
