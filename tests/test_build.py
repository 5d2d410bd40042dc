"""Install paths of the extension: a _C built for another torch is refused and the package
carries on; the opt-in JIT build (STYLEGAN_FAST_JIT=1) compiles the shipped sources into
TORCH_EXTENSIONS_DIR, or says why it could not; the wheel carries those sources; the default
CUDA architectures of a build without a visible GPU.

Each scenario runs in a subprocess on a copy of the package, so the extension loaded by this
process is never replaced or registered twice."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from stylegan_fast import _build_flags, _library, cli

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "stylegan_fast"


def copy_package(dest: Path, with_extension: bool, sources=None) -> Path:
    """A source-checkout layout under ``dest``: the package's Python files (and, when
    ``with_extension``, the built _C and its build info) plus ``csrc/`` (only ``sources`` when
    given)."""
    ignore = ["__pycache__", "_csrc"]
    if not with_extension:
        ignore += ["_C*.so", "_C*.pyd", "_build_info.json"]
    shutil.copytree(PACKAGE, dest / "stylegan_fast", ignore=shutil.ignore_patterns(*ignore))
    (dest / "csrc").mkdir()
    for path in _build_flags.shipped_files(REPO / "csrc"):
        if sources is None or path.name in sources or path.suffix in (".h", ".cuh"):
            shutil.copy2(path, dest / "csrc")
    return dest


# An editable install (pip install -e, as the README's test command does) adds a finder that
# maps stylegan_fast._C to the checkout's built library whatever stylegan_fast.__path__ says;
# the copies must import only what they hold.
DROP_EDITABLE_FINDERS = (
    "import sys\n"
    "sys.meta_path[:] = [\n"
    "    f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')\n"
    "]\n"
)


def run_python(code: str, cwd: Path, **env) -> str:
    """Runs ``code`` in a fresh interpreter in ``cwd`` (so ``import stylegan_fast`` finds the
    copy there); returns stdout, failing with stderr when the process fails."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEGAN_FAST_")}
    full_env.pop("PYTHONPATH", None)
    full_env.update(env)
    header = (
        DROP_EDITABLE_FINDERS + "import stylegan_fast, pathlib\n"
        f"assert pathlib.Path(stylegan_fast.__file__).is_relative_to({str(cwd)!r}), "
        "stylegan_fast.__file__\n"
        "from stylegan_fast import _library\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", header + code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_extension_built_for_another_torch_is_refused_and_the_package_carries_on(tmp_path):
    copy_package(tmp_path, with_extension=True)
    info_path = tmp_path / "stylegan_fast" / "_build_info.json"
    info = json.loads(info_path.read_text())
    info["torch_version"] = "0.0.1+elsewhere"
    info_path.write_text(json.dumps(info))
    out = run_python(
        "import warnings, torch\n"
        "from stylegan_fast.ops import bias_act\n"
        "print('loaded', _library.EXTENSION.loaded)\n"
        "print('reason', _library.EXTENSION.reason)\n"
        "x, b = torch.randn(2, 3, 4, 4), torch.randn(3)\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    y = bias_act(x, b, act='lrelu')\n"
        "print('warned', w[0].category.__name__)\n"
        "print('equal', torch.equal(y, bias_act(x, b, act='lrelu', impl='ref')))\n",
        tmp_path,
    )
    assert "loaded False" in out
    assert f"built against torch 0.0.1+elsewhere but torch {torch.__version__} is running" in out
    assert "STYLEGAN_FAST_JIT=1" in out  # the way out for users who cannot reinstall
    assert "warned FallbackWarning" in out and "equal True" in out


def test_jit_build_failure_is_reported(tmp_path, monkeypatch, capsys):
    """A JIT build that fails leaves the extension unloaded with the compiler's error in the
    reason, which `stylegan-fast info` shows. (In process: a failed build loads nothing.)"""
    sources = tmp_path / "csrc"
    sources.mkdir()
    (sources / "broken.cpp").write_text('#error "deliberately broken source"\n')
    monkeypatch.setattr(_build_flags, "source_dir", lambda package_dir: sources)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    status = _library._jit_build_extension("it was not built")
    assert not status.loaded
    assert status.reason.startswith("it was not built; the JIT build (STYLEGAN_FAST_JIT=1) failed")
    assert "deliberately broken source" in status.reason
    monkeypatch.setattr(_library, "EXTENSION", status)
    assert cli.main(["info"]) == 0
    assert f"stylegan_fast._C not loaded: {status.reason}" in capsys.readouterr().out


def test_jit_needs_opting_in(monkeypatch):
    """Without STYLEGAN_FAST_JIT=1 a missing _C is reported, not built, and the reason names
    the variable."""
    monkeypatch.delenv("STYLEGAN_FAST_JIT", raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "stylegan_fast._C" else find_spec(name, *args),
    )
    monkeypatch.setattr(_library, "_jit_build_extension", lambda reason: pytest.fail("built"))
    status = _library._load_extension()
    assert not status.loaded
    assert status.reason.startswith("it was not built") and "STYLEGAN_FAST_JIT=1" in status.reason


@pytest.mark.slow
def test_jit_build_compiles_the_shipped_sources(tmp_path):
    """STYLEGAN_FAST_JIT=1 on a package without _C: the sources are compiled into
    TORCH_EXTENSIONS_DIR and their kernels serve impl='cpp'; a second import loads the cached
    library without compiling. Only bias_act's kernels are compiled, to keep it to ~1 minute
    on 2 cores (the whole csrc/ takes several)."""
    copy_package(tmp_path, with_extension=False, sources={"module.cpp", "bias_act.cpp"})
    extensions = tmp_path / "extensions"
    code = (
        "import torch\n"
        "from stylegan_fast.ops import bias_act\n"
        "ext = _library.EXTENSION\n"
        "print('loaded', ext.loaded, ext.reason)\n"
        "print('dir', ext.build_info['jit_build_dir'])\n"
        "print('cpu kernel', _library.has_kernel('bias_act_fwd', 'CPU'))\n"
        "x, b = torch.randn(2, 3, 4, 4), torch.randn(3)\n"
        "y = bias_act(x, b, act='lrelu', impl='cpp')\n"
        "print('close', torch.allclose(y, bias_act(x, b, act='lrelu', impl='ref')))\n"
    )
    env = dict(STYLEGAN_FAST_JIT="1", TORCH_EXTENSIONS_DIR=str(extensions), MAX_JOBS="2")
    out = run_python(code, tmp_path, **env)
    assert "loaded True" in out and "cpu kernel True" in out and "close True" in out
    build_dir = Path(out.split("dir ", 1)[1].splitlines()[0])
    assert build_dir.parent == extensions and any(build_dir.glob("*.so"))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DROP_EDITABLE_FINDERS + "import stylegan_fast; print(stylegan_fast.EXTENSION.loaded)",
        ],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout.strip() == "True" and "compiling" not in proc.stderr


@pytest.mark.slow
def test_wheel_ships_the_sources_for_the_jit_build(tmp_path):
    """The wheel carries csrc/ as stylegan_fast/_csrc (what the JIT build compiles from an
    install) and impl="auto"'s preference table. Built without the extension
    (STYLEGAN_FAST_NO_EXTENSION=1): only packaging."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy2(REPO / name, project)
    copy_package(project, with_extension=False)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q"]
        + ["-w", str(tmp_path / "dist"), str(project)],
        env={**os.environ, "STYLEGAN_FAST_NO_EXTENSION": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"stylegan_fast/_csrc/{p.name}" for p in _build_flags.shipped_files(REPO / "csrc")}
    assert wanted <= names, sorted(wanted - names)
    assert any(n.endswith(".cu") for n in wanted) and any(n.endswith(".cuh") for n in wanted)
    assert "stylegan_fast/auto_preferences.json" in names


def test_source_dir_prefers_the_installed_copy(tmp_path):
    package = tmp_path / "site" / "stylegan_fast"
    (package / "_csrc").mkdir(parents=True)
    (package / "_csrc" / "a.cpp").write_text("")
    (tmp_path / "site" / "csrc").mkdir()
    (tmp_path / "site" / "csrc" / "b.cpp").write_text("")
    assert _build_flags.source_dir(package) == package / "_csrc"
    shutil.rmtree(package / "_csrc")
    assert _build_flags.source_dir(package) == tmp_path / "site" / "csrc"
    assert _build_flags.source_dir(REPO / "stylegan_fast") == REPO / "csrc"


def test_sources_split_cpu_and_cuda():
    cpu = {p.name for p in _build_flags.sources(REPO / "csrc", with_cuda=False)}
    both = {p.name for p in _build_flags.sources(REPO / "csrc", with_cuda=True)}
    assert cpu and all(n.endswith(".cpp") for n in cpu)
    cuda = both - cpu
    assert {"bias_act_cuda.cu", "upfirdn2d_cuda.cu", "layer_epilogue_cuda.cu"} <= cuda
    # <op>.cpp and <op>.cu would compile to the same <op>.o: CUDA files carry a suffix.
    assert not {Path(n).stem for n in cpu} & {Path(n).stem for n in cuda}


@pytest.mark.parametrize(
    "torch_archs, expected",
    [
        (["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"], "7.5;8.0;9.0;10.0;12.0+PTX"),
        (["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"], "7.0;8.0;9.0+PTX"),
        (["sm_90a", "compute_90"], "9.0+PTX"),
        ([], "8.0;9.0+PTX"),
    ],
)
def test_default_cuda_arch_list(torch_archs, expected):
    assert _build_flags.default_cuda_arch_list(torch_archs) == expected
