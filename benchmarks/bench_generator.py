"""Generator inference throughput (images/s, ms/batch, peak memory, TFLOP/s, MFU) for the
eager peer, the eager/compiled reference model, each stylegan_fast backend and CUDA-graph
replay: `python benchmarks/bench_generator.py --help`. The implementation is
`stylegan_fast.bench.e2e`; CUDA runs append to `benchmarks/results/<device>-e2e.{csv,md}`."""

import sys

from stylegan_fast.bench.e2e import main

if __name__ == "__main__":
    sys.exit(main(default_workloads=["generator"]))
