"""The steps of ``benchmarks/gpu_check.sh``: one short, prepared check of the whole library on a
GPU (H100/H200, ~15 minutes of lent device time, machine start included), which must finish
within 9 minutes whatever happens and leave its results in one output folder.

The shell script runs each step as its own process under its own time limit, so a crash (an
illegal memory access poisons a CUDA context) or a hang costs one phase, not the run; every
step also watches its own time budget and writes what it measured row by row. Steps
(``python -m stylegan_fast.bench.gpu_check STEP ...``):

- ``env``: GPU, SM count, versions, measured copy bandwidth -> ``env.json``
  (:mod:`.environment`);
- ``build-status``: whether the built ``_C`` fits the running torch and this GPU (exit 0) or
  must be built (exit 3) (:mod:`.environment`);
- ``sanitize``: every op forward, backward and R1 on small inputs through each kernel
  backend, for ``compute-sanitizer`` to watch (:mod:`.sanitize`);
- ``ops``: the lean op benchmark, inputs drawn on the GPU -> ``ops.csv`` (:mod:`.ops`);
- ``e2e``: generator inference and the training step, with and without CUDA graphs ->
  ``e2e.csv`` (:mod:`.e2e`);
- ``summary``: ``summary.md``, the measured ``auto_preferences.json`` and the table printed
  last (:mod:`.summary`).

``--dry-run`` runs every step on the CPU (tiny shapes, Triton under the interpreter) so that CI
exercises the script between GPU runs.
"""
