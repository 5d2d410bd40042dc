"""Compiler flags and sources of the extension ``stylegan_fast._C``, shared by ``setup.py`` (the
install-time build) and ``_library`` (the opt-in JIT build, ``STYLEGAN_FAST_JIT=1``), so that
both compile the same code the same way.

Plain Python with no imports from the package (``setup.py`` runs it before the package is
importable) and no torch import at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_SUFFIXES = (".cpp", ".cu")
HEADER_SUFFIXES = (".h", ".cuh")

# No code here reads FP exception flags or errno, and without these GCC will not turn selects
# like `v > 0 ? v : v * alpha` into vector blends (it may not execute the multiply
# speculatively): leaky ReLU ran 20x slower than ReLU (4.7 vs 0.23 ms per 1M floats).
CXX_FLAGS = ["-O3", "-std=c++20", "-fno-trapping-math", "-fno-math-errno"]
if sys.platform.startswith("linux"):
    # Compile-only: at::parallel_for is serial without it. The GOMP symbols resolve at load
    # time from the runtime torch already loaded, so torch.set_num_threads applies to us too
    # and no second OpenMP runtime is linked in.
    CXX_FLAGS.append("-fopenmp")

# No --use_fast_math: the kernels are memory-bound, so approximate exp/tanh/division/sqrt
# would buy no time, while exact ones keep every kernel within the float32 tolerances the
# parity tests use against a float64 reference (and NaN/denormal behaviour equal to torch's).
NVCC_FLAGS = ["-O3", "-std=c++20", "-lineinfo"]

DEFINE_WITH_CUDA = "STYLEGAN_FAST_WITH_CUDA"


def source_dir(package_dir: Path) -> Path | None:
    """Where the C++/CUDA sources are: ``<package>/_csrc`` in an installed wheel (setup.py
    copies them there), ``<repo>/csrc`` in a source checkout or editable install."""
    for candidate in (package_dir / "_csrc", package_dir.parent / "csrc"):
        if candidate.is_dir() and any(candidate.glob("*.cpp")):
            return candidate
    return None


def sources(directory: Path, with_cuda: bool) -> list[Path]:
    """The translation units to compile: every ``.cpp``, plus every ``.cu`` when ``with_cuda``."""
    suffixes = SOURCE_SUFFIXES if with_cuda else (".cpp",)
    return sorted(p for p in directory.iterdir() if p.suffix in suffixes)


def shipped_files(directory: Path) -> list[Path]:
    """Every file the JIT build needs: sources and headers."""
    return sorted(p for p in directory.iterdir() if p.suffix in SOURCE_SUFFIXES + HEADER_SUFFIXES)


def default_cuda_arch_list(torch_arch_list: list[str]) -> str:
    """A ``TORCH_CUDA_ARCH_LIST`` for a build machine with no visible GPU: the architectures
    the installed torch itself was built for (``torch.cuda.get_arch_list()``, e.g.
    ``['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']``), without minor versions that
    an earlier one of the same major already runs (sm_80 code runs on sm_86), and PTX of the
    newest so that later GPUs can JIT-compile it: '7.5;8.0;9.0;10.0;12.0+PTX' for that list.
    """
    archs: dict[int, int] = {}
    for name in torch_arch_list:
        if not name.startswith("sm_"):
            continue
        digits = name[3:].rstrip("a")
        if not digits.isdigit() or len(digits) < 2:
            continue
        major, minor = int(digits[:-1]), int(digits[-1])
        if major < 7:
            continue  # recent nvcc no longer targets them
        archs[major] = min(minor, archs.get(major, minor))
    if not archs:
        return "8.0;9.0+PTX"
    listed = [f"{major}.{minor}" for major, minor in sorted(archs.items())]
    listed[-1] += "+PTX"
    return ";".join(listed)
