"""Benchmark adain: `python benchmarks/bench_adain.py --help`."""

import sys

from stylegan_fast.bench import main

if __name__ == "__main__":
    sys.exit(main(default_ops=["adain"]))
