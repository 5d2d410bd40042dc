"""``python -m stylegan_fast.bench.quality.run``: prepare the digits measurement, train and
score runs, and print the table.

    prepare   --workdir W                writes W/digits.zip, W/feature_net.pt, W/prepare.json
                                         (classifier test accuracy, real-vs-real and untrained-G
                                         scores)
    train     --workdir W --name N --setting main|paper [--kimg K] [--evals 1,2,4,...]
              [--impl auto|ref|...] [--seed S] [--data digits|faces] [--set FIELD=VALUE ...]
              [--g FIELD=VALUE ...] [--d FIELD=VALUE ...]
                                         trains the tiny preset (greyscale; digits: no x-flips;
                                         faces: the main job's bundled faces, no FID) and
                                         appends a record per evaluation to W/runs/N/quality.jsonl
    steps     --workdir W --name N [--steps 100] [--impl auto] [--against ref]
              [--perturb EPS] [--setting ...]
                                         the first steps with --impl and with --against from
                                         one seed: losses and the images' difference per step
    reference --workdir W --name N [--kimg K] [--evals ...] [--batch B]
                                         the same for the plain-PyTorch DCGAN
    table     --workdir W [--runs A,B]   the records as a markdown table
    inspect   --network FILE [--data digits|faces]
                                         a generator's out-of-range pixels and speckle per noise
                                         mode and per level of detail, beside the reals'
    losses    --workdir W --runs A,B [--kimg 4]
                                         the runs' logged losses side by side (impl comparison)

``--set`` overrides a ``TrainingConfig`` field, ``--g``/``--d`` a generator/discriminator
config field (values parsed as JSON, e.g. ``--set r1_gamma=10 --g use_noise=false``). Every
evaluation scores ``--num`` images (default 2000) of the EMA generator (random noise,
psi 1) against all 1797 digits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ...models import Discriminator, Generator, preset_configs
from ...models.progressive import lod_images
from ...train.checkpoint import load_generator
from ...train.config import MAIN_JOB, TrainingConfig
from ...train.data import BundledFaces, ImageFolderDataset
from ...train.loop import Trainer
from ...train.stats import read_stats
from . import classifier, digits, measure
from .reference_gan import ReferenceGAN

RESOLUTION = 32
DEFAULT_NUM = 2000
DEFAULT_EVALS = "1,2,4,8,16,25,50,75,100"

# The main job's settings (``stylegan-fast train``'s defaults) as trainer options.
MAIN_SETTINGS = dict(
    batch_size=MAIN_JOB["batch"],
    g_lr=MAIN_JOB["lr"],
    d_lr=MAIN_JOB["lr"],
    r1_gamma=MAIN_JOB["r1_gamma"],
    r1_interval=MAIN_JOB["r1_interval"],
    ema_half_life_kimg=MAIN_JOB["ema_kimg"],
    ema_rampup=0.05,
    lod_training_kimg=MAIN_JOB["lod_kimg"],
    lod_transition_kimg=MAIN_JOB["lod_kimg"],
)
# StyleGAN1's FFHQ settings brought to 32² and a 100-kimg budget: R1 gamma 10 every D step,
# lr 0.001, batch 32 (the paper: 64 at 32²), G EMA half-life 10 kimg (ramped up over the
# first images as StyleGAN2-ADA does, so early snapshots are not the initial weights), and
# the 600 + 600 kimg per level scaled by the budget (25 M -> 100 k images: 2.4 k; rounded up
# to 3 k so each level still sees a few thousand images).
PAPER_SETTINGS = dict(
    batch_size=32,
    g_lr=0.001,
    d_lr=0.001,
    r1_gamma=10.0,
    r1_interval=1,
    ema_half_life_kimg=10.0,
    ema_rampup=0.05,
    lod_training_kimg=3.0,
    lod_transition_kimg=3.0,
)
SETTINGS = {"main": MAIN_SETTINGS, "paper": PAPER_SETTINGS}


def _assignments(items: list[str] | None, option: str) -> dict:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{option}: expected FIELD=VALUE, got {item!r}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def _evals(text: str, kimg: float) -> list[float]:
    points = sorted({float(v) for v in text.split(",") if v.strip()} | {kimg})
    return [p for p in points if 0 < p <= kimg]


def _paths(workdir: str) -> dict[str, Path]:
    root = Path(workdir)
    return {
        "root": root,
        "zip": root / "digits.zip",
        "net": root / "feature_net.pt",
        "prepare": root / "prepare.json",
        "runs": root / "runs",
    }


def _scorer(paths) -> measure.DigitsScorer:
    if not paths["net"].is_file():
        raise ValueError(f"no feature network at {paths['net']}: run `prepare` first")
    reals, _ = digits.digits_images(RESOLUTION)
    return measure.DigitsScorer(paths["net"], reals)


def _tiny_models(seed: int, impl: str, g: dict, d: dict):
    g_config, d_config = preset_configs("tiny", progressive=True, img_channels=1)
    torch.manual_seed(seed)
    return (
        Generator.from_config(g_config.replace(**g), impl=impl),
        Discriminator.from_config(d_config.replace(**d), impl=impl),
    )


def prepare(args) -> int:
    paths = _paths(args.workdir)
    paths["root"].mkdir(parents=True, exist_ok=True)
    digits.write_digits_zip(paths["zip"], RESOLUTION)
    images, labels = digits.digits_images(RESOLUTION)
    train, test = digits.split_indices(len(images))
    started = time.perf_counter()
    model = classifier.train_classifier(images[train], labels[train])
    record = {
        "classifier_seconds": round(time.perf_counter() - started, 1),
        "classifier_train_accuracy": classifier.accuracy(model, images[train], labels[train]),
        "classifier_test_accuracy": classifier.accuracy(model, images[test], labels[test]),
        "num_train": len(train),
        "num_test": len(test),
    }
    classifier.export_feature_net(model, paths["net"])
    record["real_vs_real_half"] = measure.real_split_scores(paths["net"], images)
    record["real_speckle"] = measure.high_frequency_energy(images)
    scorer = _scorer(paths)
    G, _ = _tiny_models(args.seed, "auto", {}, {})
    G.set_lod(0.0)
    record["untrained_G"] = scorer.score_generator(G.eval(), args.num)
    record["num"] = args.num
    paths["prepare"].write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    return 0


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _start_run(args) -> tuple[measure.DigitsScorer | None, Path, Path]:
    """The scorer (None for the faces, which have no classifier), the run's folder and its
    (emptied) ``quality.jsonl``."""
    paths = _paths(args.workdir)
    scorer = _scorer(paths) if getattr(args, "data", "digits") == "digits" else None
    outdir = paths["runs"] / args.name
    outdir.mkdir(parents=True, exist_ok=True)
    log = outdir / "quality.jsonl"
    log.unlink(missing_ok=True)
    return scorer, outdir, log


def _trainer(args, outdir: Path, impl: str) -> Trainer:
    """The tiny preset (greyscale, progressive) on the digits zip (unlabelled, no x-flips:
    a mirrored digit is not a digit) with ``args.setting`` and the ``--set/--g/--d``
    overrides."""
    options = dict(SETTINGS[args.setting])
    options.update(_assignments(args.set, "--set"))
    config = TrainingConfig(
        total_kimg=args.kimg,
        seed=args.seed,
        log_kimg=0.5,
        sample_kimg=args.kimg,
        checkpoint_kimg=args.kimg,
        keep_checkpoints=1,
        **options,
    )
    G, D = _tiny_models(args.seed, impl, _assignments(args.g, "--g"), _assignments(args.d, "--d"))
    if getattr(args, "data", "digits") == "faces":
        dataset = BundledFaces(RESOLUTION, channels=1, xflip=True)  # the main job's data
    else:
        dataset = ImageFolderDataset(
            _paths(args.workdir)["zip"], RESOLUTION, channels=1, labels=False, cache=True
        )
    return Trainer(G, D, dataset, config, outdir, show_progress=False)


def train(args) -> int:
    scorer, outdir, log = _start_run(args)
    trainer = _trainer(args, outdir, args.impl)
    config, G, D = trainer.config, trainer.G, trainer.D
    _append(
        log,
        {
            "kimg": 0,
            "config": config.to_dict(),
            "setting": args.setting,
            "impl": args.impl,
            "G": G.config.to_dict(),
            "D": D.config.to_dict(),
        },
    )
    started = time.perf_counter()
    for point in _evals(args.evals, args.kimg):
        stats = trainer.run(until_kimg=point)
        train_seconds = time.perf_counter() - started
        record = {
            "kimg": trainer.kimg,
            "lod": trainer.lod,
            "train_seconds": round(train_seconds, 1),
        }
        if scorer is not None:
            record.update(scorer.score_generator(trainer.G_ema, args.num, args.seed))
        else:
            images = measure.sample_generator(trainer.G_ema, args.num, args.seed)
            record.update(
                outside=measure.fraction_outside(images),
                speckle=measure.high_frequency_energy(images),
            )
        record["outside_G"] = measure.fraction_outside(
            measure.sample_generator(trainer.G, 500, args.seed)
        )
        # The same latents without the per-pixel noise inputs: how much of the speckle is theirs.
        record["speckle_no_noise"] = measure.high_frequency_energy(
            measure.sample_generator(trainer.G_ema, args.num, args.seed, noise_mode="none")
        )
        record["noise_strength"] = measure.noise_strengths(trainer.G_ema)
        trainer.save_samples(f"fakes-{trainer.images_seen:09d}.png")
        record["stats"] = {
            k: v for k, v in stats.items() if k.startswith(("loss", "logits", "penalty"))
        }
        _append(log, record)
        started += (
            time.perf_counter() - started - train_seconds
        )  # scoring time is not training time
    trainer.close()
    return 0


def steps(args) -> int:
    """The first ``--steps`` training steps with ``--impl`` and with ``--against`` (default
    "ref") from the same seed: per step, both runs' losses and how far apart the two
    generators' images are (fixed latents, constant noise; the largest pixel difference over
    the images' std). ``--perturb EPS`` scales the second run's G weights by ``1 + EPS`` first
    (with ``--against`` = ``--impl``: how fast a rounding-size difference grows by itself).

    Weights are not compared directly: parameters whose true gradient is zero (e.g. the 4x4
    layer's bias, which instance norm cancels on the constant input) get rounding-level
    gradients that Adam scales up to full steps of either sign, without changing the images.
    """
    root = _paths(args.workdir)["runs"] / args.name
    names = (args.impl, args.against)
    trainers = [_trainer(args, root / f"{i}-{impl}", impl) for i, impl in enumerate(names)]
    if args.perturb:
        # The control: the same ops from weights one rounding error apart.
        with torch.no_grad():
            for p in trainers[1].G.parameters():
                p.mul_(1.0 + args.perturb)
    z = torch.randn([64, trainers[0].G.z_dim], generator=torch.Generator().manual_seed(1))
    print(
        f"| step | loss/D {names[0]} | loss/D {names[1]} | loss/G {names[0]} | "
        f"loss/G {names[1]} | max image difference / image std |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for step in range(1, args.steps + 1):
        stats = [t.train_step() for t in trainers]
        if step in (1, 2, 5) or step % args.every == 0:
            with torch.no_grad():
                a, b = (t.G(z, noise_mode="const") for t in trainers)
            difference = float((a - b).abs().max() / b.std())
            cells = [f"{float(s[k]):.6f}" for k in ("loss/D", "loss/G") for s in stats]
            print(f"| {step} | " + " | ".join(cells) + f" | {difference:.2e} |", flush=True)
    return 0


def inspect(args) -> int:
    """Where a trained generator's speckle comes from: for ``--network`` (an exported
    ``generator.safetensors``), its pixels outside [-1, 1] and the speckle
    (:func:`measure.high_frequency_energy`) with each noise mode and at each level of
    detail, beside the real images' at the same level (``--data digits`` or ``faces``, the
    bundled ones), and the per-layer noise strengths."""
    G = load_generator(args.network).eval()
    if args.data == "digits":
        reals, _ = digits.digits_images(G.resolution)
    else:
        reals = BundledFaces(G.resolution, G.img_channels)._images
    record = {"network": args.network, "num": args.num}
    images = measure.sample_generator(G, args.num, args.seed)
    excess = (images.abs() - 1).clamp(min=0)
    record.update(
        outside=measure.fraction_outside(images),
        outside_by_0_2=float((excess > 0.2).float().mean()),
        min=float(images.min()),
        max=float(images.max()),
        real_speckle=measure.high_frequency_energy(reals),
    )
    for mode in ("random", "const", "none"):
        record[f"speckle_{mode}"] = measure.high_frequency_energy(
            measure.sample_generator(G, args.num, args.seed, noise_mode=mode)
        )
    if G.synthesis.progressive:
        # The same latents with the finest blocks skipped: which resolution adds the speckle.
        for lod in range(G.synthesis.max_lod + 1):
            G.set_lod(float(lod))
            fake = measure.high_frequency_energy(measure.sample_generator(G, args.num, args.seed))
            real = measure.high_frequency_energy(lod_images(reals, float(lod)))
            record[f"speckle_lod{lod}"] = {"fake": fake, "real": real, "ratio": fake / real}
        G.set_lod(0.0)
    record["noise_strength"] = measure.noise_strengths(G)
    print(json.dumps(record, indent=2))
    return 0


def reference(args) -> int:
    scorer, outdir, log = _start_run(args)
    reals, _ = digits.digits_images(RESOLUTION)
    gan = ReferenceGAN(r1_gamma=args.r1_gamma, seed=args.seed)
    _append(
        log,
        {"kimg": 0, "setting": "reference-dcgan", "batch": args.batch, "r1_gamma": args.r1_gamma},
    )
    order_rng = torch.Generator().manual_seed(args.seed)
    order, position, seen, elapsed = torch.randperm(len(reals), generator=order_rng), 0, 0, 0.0
    for point in _evals(args.evals, args.kimg):
        started = time.perf_counter()
        while seen < point * 1000:
            if position + args.batch > len(order):
                order, position = torch.randperm(len(reals), generator=order_rng), 0
            stats = gan.step(reals[order[position : position + args.batch]])
            position += args.batch
            seen += args.batch
        elapsed += time.perf_counter() - started
        record = {"kimg": seen / 1000, "train_seconds": round(elapsed, 1)}
        record.update(scorer.score(gan.sample(args.num, args.seed), args.seed))
        record["stats"] = stats
        _append(log, record)
    return 0


def table(args) -> int:
    paths = _paths(args.workdir)
    print(
        "| run | kimg | FID | KID | outside [-1,1] | speckle (no noise) | "
        "noise 32² | logits real/fake | train s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = args.runs.split(",") if args.runs else None
    for log in sorted(paths["runs"].glob("*/quality.jsonl")):
        if names is not None and log.parent.name not in names:
            continue
        for line in log.read_text().splitlines():
            r = json.loads(line)
            if "speckle" not in r and "fid" not in r:
                continue
            speckle = f"{r['speckle']:.4f}" if "speckle" in r else "-"
            fid = f"{r['fid']:.1f}" if "fid" in r else "-"
            kid = f"{r['kid']:.0f}" if "kid" in r else "-"
            if "speckle_no_noise" in r:
                speckle += f" ({r['speckle_no_noise']:.4f})"
            strengths = r.get("noise_strength", {})
            noise = "/".join(f"{strengths[k]:.3f}" for k in ("32.0", "32.1") if k in strengths)
            stats = r.get("stats", {})
            logits = (
                f"{stats['logits/real']:.2f}/{stats['logits/fake']:.2f}"
                if "logits/real" in stats
                else ""
            )
            print(
                f"| {log.parent.name} | {r['kimg']:g} | {fid} | {kid} | "
                f"{r['outside']:.3f} | {speckle} | {noise} | {logits} | "
                f"{r['train_seconds']:.0f} |"
            )
    return 0


def losses(args) -> int:
    """The runs' logged loss means side by side, per logged kimg (up to ``--kimg``)."""
    paths = _paths(args.workdir)
    names = args.runs.split(",")
    records = {name: read_stats(paths["runs"] / name / "stats.jsonl") for name in names}
    keys = ("loss/D", "loss/G", "logits/real", "logits/fake")
    print("| kimg | " + " | ".join(f"{n} {k}" for n in names for k in keys) + " |")
    print("|---:|" + "---:|" * (len(names) * len(keys)))
    by_kimg = [{r["kimg"]: r for r in records[n]} for n in names]
    for kimg in sorted(set.intersection(*(set(b) for b in by_kimg))):
        if kimg > args.kimg:
            break
        cells = [f"{b[kimg].get(k, float('nan')):.4f}" for b in by_kimg for k in keys]
        print(f"| {kimg:g} | " + " | ".join(cells) + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_fast.bench.quality.run")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "train", "steps", "reference", "table", "losses", "inspect"):
        p = sub.add_parser(name)
        p.add_argument("--workdir", required=name != "inspect")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--num", type=int, default=DEFAULT_NUM, help="generated images per score")
        if name in ("train", "steps", "reference"):
            p.add_argument("--name", required=True)
            p.add_argument("--kimg", type=float, default=100.0)
            p.add_argument("--evals", default=DEFAULT_EVALS, help="kimg points to score at")
        if name == "inspect":
            p.add_argument("--network", required=True, help="an exported generator.safetensors")
        if name in ("inspect", "train"):
            p.add_argument(
                "--data",
                choices=("digits", "faces"),
                default="digits",
                help="faces: the main job's bundled faces with x-flips (no FID/KID: speckle, "
                "pixel range and noise strengths only)",
            )
        if name == "steps":
            p.add_argument("--steps", type=int, default=100)
            p.add_argument("--every", type=int, default=10, help="print every N steps")
            p.add_argument("--against", default="ref", help="the second run's impl")
            p.add_argument("--perturb", type=float, default=0.0)
        if name in ("train", "steps"):
            p.add_argument("--setting", choices=tuple(SETTINGS), default="main")
            p.add_argument("--impl", default="auto")
            p.add_argument("--set", action="append", metavar="FIELD=VALUE")
            p.add_argument("--g", action="append", metavar="FIELD=VALUE")
            p.add_argument("--d", action="append", metavar="FIELD=VALUE")
        if name in ("table", "losses"):
            p.add_argument("--runs", required=name == "losses", help="comma-separated run names")
        if name == "losses":
            p.add_argument("--kimg", type=float, default=4.0, help="up to this kimg")
        if name == "reference":
            p.add_argument("--batch", type=int, default=32)
            p.add_argument("--r1-gamma", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the models are too small to split (see commands/train.py)
    try:
        commands = {"prepare": prepare, "train": train, "steps": steps, "reference": reference}
        commands.update(table=table, losses=losses, inspect=inspect)
        return commands[args.command](args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
