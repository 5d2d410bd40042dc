"""Training quality you can measure, offline: scikit-learn's bundled handwritten digits at
32², a small digit classifier whose penultimate features are the FID/KID feature network, and
runs of the trainer (and of a plain-PyTorch reference GAN) scored against kimg.

- :mod:`.digits`: the data set (``load_digits`` up-sampled to 32², written as a zip of PNGs
  with ``dataset.json`` labels, the format ``stylegan_fast.train.data`` reads);
- :mod:`.classifier`: the classifier, its training, and the TorchScript export that
  ``stylegan_fast.metrics.load_feature_net(path, preprocessing="identity")`` loads;
- :mod:`.measure`: FID/KID of a generator (or of any image source) against the digits, and
  the fraction of pixels outside [-1, 1];
- :mod:`.reference_gan`: a DCGAN written in plain PyTorch (non-saturating loss + R1);
- :mod:`.run`: the command line (``python -m stylegan_fast.bench.quality.run``) that prepares
  the measurement and records runs; results go to ``benchmarks/results/quality-cpu.md``.
"""
