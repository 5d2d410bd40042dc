"""Benchmark bias_act (bias + leaky ReLU): `python benchmarks/bench_bias_act.py --help`."""

import sys

from stylegan_fast.bench import main

if __name__ == "__main__":
    sys.exit(main(default_ops=["bias_act"]))
