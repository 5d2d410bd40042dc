"""Builds the optional extension ``stylegan_fast._C`` from ``csrc/``.

C++ CPU kernels are always built. CUDA sources (``csrc/*.cu``) are added when the installed
torch has CUDA and ``nvcc`` is found; no GPU needs to be visible (set TORCH_CUDA_ARCH_LIST to
choose the architectures; MAX_JOBS bounds parallel compilation). STYLEGAN_FAST_NO_EXTENSION=1
skips the extension entirely: the package then runs its reference (and Triton) paths.

The build records the torch it was compiled against in ``_build_info.json`` beside the
extension, so that a ``_C`` built for another torch is refused at import with a clear message
instead of failing on undefined symbols.

Without TORCH_CUDA_ARCH_LIST and with no GPU visible, the CUDA kernels are built for the
architectures the installed torch supports (see _build_flags.default_cuda_arch_list), and the
build says so. The C++/CUDA sources are also copied into the package (stylegan_fast/_csrc), so
that an installed wheel can rebuild the extension at import time (STYLEGAN_FAST_JIT=1).
"""

import glob
import json
import os
import pathlib
import runpy
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
FLAGS = runpy.run_path(os.path.join(ROOT, "stylegan_fast", "_build_flags.py"))


def _truthy(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _extension_setup():
    if _truthy("STYLEGAN_FAST_NO_EXTENSION"):
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    cpp_sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "*.cu")))
    with_cuda = (
        bool(cuda_sources)
        and torch.version.cuda is not None
        and CUDA_HOME is not None
        and not _truthy("STYLEGAN_FAST_NO_CUDA")
    )
    cxx_flags = list(FLAGS["CXX_FLAGS"])
    define_macros = []
    if with_cuda:
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
            # cpp_extension would query the (absent) GPUs and fail; build for what torch runs on.
            archs = FLAGS["default_cuda_arch_list"](torch.cuda.get_arch_list())
            os.environ["TORCH_CUDA_ARCH_LIST"] = archs
            print(
                f"stylegan_fast: no GPU visible and TORCH_CUDA_ARCH_LIST unset: building the CUDA "
                f"kernels for {archs} (the architectures torch {torch.__version__} supports); "
                "set TORCH_CUDA_ARCH_LIST (e.g. 9.0) to build fewer, faster"
            )
        define_macros.append((FLAGS["DEFINE_WITH_CUDA"], "1"))
        extension = CUDAExtension(
            "stylegan_fast._C",
            cpp_sources + cuda_sources,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": list(FLAGS["NVCC_FLAGS"])},
        )
    else:
        extension = CppExtension(
            "stylegan_fast._C",
            cpp_sources,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags},
        )

    class BuildWithInfo(BuildExtension):
        """Writes _build_info.json next to the built extension."""

        def run(self):
            super().run()
            ext_path = self.get_ext_fullpath("stylegan_fast._C")
            info = {
                "torch_version": torch.__version__,
                "torch_cuda": torch.version.cuda,
                "with_cuda": with_cuda,
                "cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST"),
                "sources": [os.path.basename(s) for s in extension.sources],
            }
            with open(os.path.join(os.path.dirname(ext_path), "_build_info.json"), "w") as f:
                json.dump(info, f, indent=1)

    return [extension], {"build_ext": BuildWithInfo.with_options(use_ninja=True)}


class BuildPyWithSources(build_py):
    """Copies csrc/ into the package as stylegan_fast/_csrc: the sources of the JIT build."""

    def run(self):
        super().run()
        source_dir = os.path.join(ROOT, "csrc")
        target = os.path.join(self.build_lib, "stylegan_fast", "_csrc")
        os.makedirs(target, exist_ok=True)
        for path in FLAGS["shipped_files"](pathlib.Path(source_dir)):
            shutil.copy2(path, target)


ext_modules, cmdclass = _extension_setup()
setup(ext_modules=ext_modules, cmdclass={**cmdclass, "build_py": BuildPyWithSources})
