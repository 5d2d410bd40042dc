"""impl="auto" on CUDA tensors: the preference table (stylegan_fast/auto_preferences.json), its
keys (layout, plane size class), how resolution follows it, and `stylegan-fast info`."""

import json

import pytest
import torch

from stylegan_fast import _backend, _preferences, cli
from stylegan_fast.ops import bias_act


def test_table_covers_every_registered_op_and_nothing_else():
    ops = set(_backend.registered_ops())
    assert {op for op, _, _ in _preferences.TABLE} == ops
    for op in ops:
        for layout in _preferences.LAYOUTS:
            for size in _preferences.SIZE_CLASSES:
                entry = _preferences.TABLE[(op, layout, size)]
                assert entry.order and set(entry.order) <= set(_preferences.GPU_BACKENDS)
                assert entry.source.startswith(("predicted", "measured"))


def test_file_is_in_the_writers_canonical_form():
    # The GPU check rewrites the file with dump(): a hand edit that drifts from that form
    # would make the rewrite's diff unreadable.
    text = _preferences.PREFERENCES_FILE.read_text()
    comment = json.loads(text)["comment"]
    assert _preferences.dump(_preferences.load(), comment) == text


def test_unmeasured_defaults_follow_the_issue(tmp_path):
    # Until a GPU run measures them: Triton first for upfirdn2d and for channels_last
    # adain/layer_epilogue, CUDA first elsewhere.
    for (op, layout, _size), entry in _preferences.TABLE.items():
        if not entry.source.startswith("predicted"):
            continue
        triton_first = op == "upfirdn2d" or (
            op in ("adain", "layer_epilogue") and layout == "channels_last"
        )
        assert entry.order[0] == ("triton" if triton_first else "cuda"), (op, layout)


@pytest.mark.parametrize(
    "shape, channels_last, layout, size",
    [
        ((2, 8, 4, 4), False, "nchw", "small"),
        ((2, 8, 32, 32), True, "channels_last", "small"),
        ((1, 4, 33, 32), False, "nchw", "medium"),
        ((1, 4, 128, 128), True, "channels_last", "medium"),
        ((1, 2, 129, 128), False, "nchw", "large"),
        ((1, 1, 256, 256), True, "nchw", "large"),  # one channel: NCHW and NHWC coincide
    ],
)
def test_layout_and_size_class(shape, channels_last, layout, size):
    x = torch.empty(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert _preferences.layout_of(x) == layout
    assert _preferences.size_class(x) == size


def test_non_4d_inputs_are_small_nchw():
    x = torch.empty(4, 512)
    assert (_preferences.layout_of(x), _preferences.size_class(x)) == ("nchw", "small")


@pytest.fixture
def both_gpu_backends_available(monkeypatch):
    """Pretends cuda and triton can serve CUDA tensors for every op (resolution reads only
    this table), so the order alone decides."""
    for op in _backend.registered_ops():
        for backend in ("cuda", "triton"):
            monkeypatch.setitem(_backend._STATIC_REASONS, (op, backend, "cuda"), None)


def test_resolution_follows_the_table_per_layout_and_size(both_gpu_backends_available):
    cuda = torch.device("cuda")
    nchw_big = torch.empty(1, 2, 256, 256)
    cl_big = torch.empty(1, 4, 256, 256).contiguous(memory_format=torch.channels_last)
    assert _backend.resolve("upfirdn2d", "auto", cuda, x=nchw_big) == "triton"
    assert _backend.resolve("bias_act", "auto", cuda, x=nchw_big) == "cuda"
    assert _backend.resolve("layer_epilogue", "auto", cuda, x=nchw_big) == "cuda"
    assert _backend.resolve("layer_epilogue", "auto", cuda, x=cl_big) == "triton"


def test_a_measured_entry_changes_only_its_own_cell(both_gpu_backends_available, monkeypatch):
    cuda = torch.device("cuda")
    measured = _preferences.Preference(("triton", "cuda"), "measured: test GPU")
    monkeypatch.setitem(_preferences.TABLE, ("bias_act", "nchw", "small"), measured)
    assert _backend.resolve("bias_act", "auto", cuda, x=torch.empty(2, 8, 8, 8)) == "triton"
    assert _backend.resolve("bias_act", "auto", cuda, x=torch.empty(2, 8, 64, 64)) == "cuda"


def test_load_names_the_malformed_entry(tmp_path):
    data = json.loads(_preferences.PREFERENCES_FILE.read_text())
    data["cuda"]["bias_act"]["nchw"]["medium"]["order"] = ["cuda", "cpp"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"cuda\.bias_act\.nchw\.medium: order must list"):
        _preferences.load(bad)
    data["cuda"]["bias_act"]["nchw"]["medium"]["order"] = ["cuda"]
    del data["cuda"]["bias_act"]["channels_last"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"cuda\.bias_act\.channels_last\.small: missing"):
        _preferences.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the auto preference table"):
        _preferences.load(bad)


def test_cpu_resolution_ignores_the_table():
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(bias_act(x), bias_act(x, impl="cpp"))
    assert _backend.auto_order("bias_act", "cpu") == ("cpp", "ref")


def test_table_lookup_traces_under_compile_fullgraph(both_gpu_backends_available):
    # Resolution stays plain Python on tensor metadata (layout, shape), so
    # torch.compile(fullgraph=True) traces through the table lookup.
    cuda = torch.device("cuda")

    def f(x):
        backend = _backend.resolve("layer_epilogue", "auto", cuda, x=x)
        return x + (1.0 if backend == "triton" else 2.0)

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    x = torch.randn(1, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    assert torch.equal(compiled(x), x + 1.0)  # channels_last: Triton first
    y = torch.randn(1, 4, 8, 8)
    assert torch.equal(compiled(y), y + 2.0)  # NCHW: CUDA first


def test_info_prints_the_cuda_table_with_sources(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "ops on cuda tensors" in out
    assert "channels_last large  order triton, cuda, ref" in out
    assert "predicted, not measured" in out
    assert str(_preferences.PREFERENCES_FILE) in out
