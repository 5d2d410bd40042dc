"""Benchmark layer_epilogue: `python benchmarks/bench_layer_epilogue.py --help`."""

import sys

from stylegan_fast.bench import main

if __name__ == "__main__":
    sys.exit(main(default_ops=["layer_epilogue"]))
