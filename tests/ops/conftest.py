"""Fixtures shared by the plane-norm ops' tests (adain, layer_epilogue): interpreter block
limits that force the Triton engine's split and sweep plans on tiny tensors."""

from __future__ import annotations

import dataclasses

import pytest

from stylegan_fast import testing


def _plane_norm_budget(request, monkeypatch, **limits):
    """Replaces the interpreter's plane-norm budget with ``limits`` for one test (which needs the
    Triton backend of its module's ``OP``); returns the plans module."""
    testing.require_backend(request.module.OP, "triton", "cpu")
    from stylegan_fast.ops._plane_norm import plans

    monkeypatch.setattr(plans, "_INTERPRETER", dataclasses.replace(plans._INTERPRETER, **limits))
    return plans


@pytest.fixture
def tiny_triton_blocks(request, monkeypatch):
    """Interpreter block limits so small that a [2, 3, 7, 9] tensor takes the split plan (the
    GPU's for planes above 128x128) with three chunks a plane and a three-step sub-tile loop a
    chunk, and layer_epilogue's dnoise kernel several channel blocks; returns the plans
    module."""
    return _plane_norm_budget(
        request, monkeypatch, tile=32, whole_plane_max=32, min_cl_channels=2,
        sweep_max_nchw=32, sweep_max_cl=32, split_channels_nchw=2, split_channels_cl=2,
        sub_tile=16, max_chunks=3, noise_tile=32,
    )  # fmt: skip


@pytest.fixture
def sweeping_triton_blocks(request, monkeypatch):
    """Interpreter block limits that make a [2, 3, 7, 9] tensor take the sweep plan (the GPU's
    for planes up to 128x128): two planes (NCHW) or channels (channels_last) a row block, four
    16-pixel sub-tiles a sweep, and a grid of two programs that loop over the row blocks (the
    GPU's persistent grid); returns the plans module."""
    return _plane_norm_budget(
        request, monkeypatch, whole_plane_max=32, min_cl_channels=2, sweep_channels_nchw=2,
        sweep_tile=32, sweep_tile_cl=32, sweep_programs=2,
    )  # fmt: skip
