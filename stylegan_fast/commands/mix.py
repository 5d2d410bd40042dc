"""``stylegan-fast mix``: the style-mixing figure of :func:`stylegan_fast.tools.style_mixing`
(layout and style bands: :mod:`stylegan_fast.tools.mix`), optionally with every image as its
own PNG."""

from __future__ import annotations

import argparse

from ..tools import _common
from ..tools.mix import BANDS, figure_layout, figure_pixels, style_bands, style_mixing
from . import _arguments

HELP = "the style-mixing figure: coarse/middle/fine styles copied across seeds"


def parse_styles(text: str, num_ws: int) -> list[int]:
    """``coarse``, ``middle``, ``fine``, ``all`` or explicit layers (``0-3``, ``0,2,5-6``) in
    ``[0, num_ws)``; ValueError naming ``--styles`` otherwise."""
    if text in BANDS:
        layers = style_bands(num_ws)[text]
        if not layers:
            raise ValueError(
                f"--styles: a {4 * 2 ** (num_ws // 2 - 1)}² generator has no {text} layers; "
                f"bands here: {_describe(num_ws)}"
            )
        return layers
    try:
        layers = _arguments.parse_range(text, "styles")
    except ValueError:
        raise ValueError(
            f"--styles: expected one of {', '.join(BANDS)} or layers like 0-3, got {text!r}"
        ) from None
    if max(layers) >= num_ws:
        raise ValueError(f"--styles: layers must be in [0, {num_ws - 1}], got {max(layers)}")
    return sorted(set(layers))


def _describe(num_ws: int) -> str:
    return "; ".join(
        f"{name} {layers[0]}-{layers[-1]}" if layers else f"{name} none"
        for name, layers in style_bands(num_ws).items()
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument(
        "--rows", required=True, help="seeds of the left column (source A, destinations)"
    )
    parser.add_argument(
        "--cols", required=True, help="seeds of the top row (source B, whose styles are copied)"
    )
    parser.add_argument(
        "--styles",
        default="coarse",
        help="styles copied from the column images: coarse (4²-8²), middle (16²-32²), fine "
        "(64²+; the top resolution below 64²), all, or layers like 0-3 (default coarse)",
    )
    _arguments.add_truncation_arguments(parser)
    _arguments.add_noise_mode_argument(parser, "const")
    _arguments.add_class_argument(parser)
    parser.add_argument(
        "--save-cells", action="store_true", help="also write each image as its own PNG"
    )
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    rows = _arguments.parse_seeds(args.rows, "rows")
    cols = _arguments.parse_seeds(args.cols, "cols")
    _arguments.positive("batch", args.batch)
    G = _arguments.load_network(args)
    styles = parse_styles(args.styles, G.num_ws)
    outdir = _arguments.check_and_make_outdir(G, args)
    row_images, col_images, cells = style_mixing(
        G,
        rows,
        cols,
        styles,
        args.trunc,
        args.trunc_cutoff,
        args.noise_mode,
        args.class_idx,
        args.batch,
    )
    row_px, col_px, cell_px = figure_pixels(row_images, col_images, cells)
    path = _common.save_png(figure_layout(row_px, col_px, cell_px), outdir / "stylemix.png")
    print(
        f"wrote {path}: {len(rows)} rows x {len(cols)} columns, styles {styles[0]}-{styles[-1]}"
        if styles == list(range(styles[0], styles[-1] + 1))
        else f"wrote {path}: {len(rows)} rows x {len(cols)} columns, styles {styles}"
    )
    if args.save_cells:
        for seed, image in zip(rows, row_px):
            _common.save_png(image, outdir / f"seed{seed:04d}.png")
        for seed, image in zip(cols, col_px):
            _common.save_png(image, outdir / f"seed{seed:04d}.png")
        for i, row_seed in enumerate(rows):
            for j, col_seed in enumerate(cols):
                name = f"mix-row{row_seed:04d}-col{col_seed:04d}.png"
                _common.save_png(cell_px[i, j], outdir / name)
        print(f"wrote {len(rows) + len(cols) + len(rows) * len(cols)} single images to {outdir}")
    return 0
