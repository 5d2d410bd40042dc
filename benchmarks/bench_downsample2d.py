"""Benchmark downsample2d (upfirdn2d kernels): `python benchmarks/bench_downsample2d.py --help`."""

import sys

from stylegan_fast.bench import main

if __name__ == "__main__":
    sys.exit(main(default_ops=["downsample2d"]))
