"""Training-step throughput (D main + R1 + G main with Adam, the train package's losses) for
the eager peer, the eager/compiled reference model and each stylegan_fast backend:
`python benchmarks/bench_train_step.py --help` (`--r1-every 16` for lazy R1). The
implementation is `stylegan_fast.bench.e2e`; CUDA runs append to
`benchmarks/results/<device>-e2e.{csv,md}`."""

import sys

from stylegan_fast.bench.e2e import main

if __name__ == "__main__":
    sys.exit(main(default_workloads=["train"]))
