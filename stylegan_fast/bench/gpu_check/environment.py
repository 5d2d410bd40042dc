"""What the GPU check runs on (``env`` step) and whether ``_C`` must be built (``build-status``).

The environment goes to ``env.json`` in the output folder; every later step reads its copy
bandwidth (the ceiling each op's bytes are measured against) and its device name from there,
so all rows of one run share one measurement of the machine.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import torch

from .. import harness

ENV_FILE = "env.json"


def device_for(dry_run: bool) -> torch.device:
    """``cuda`` for a real run (an error if no GPU is visible), ``cpu`` for a dry run."""
    if dry_run:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"no CUDA GPU visible to torch {torch.__version__} (use --dry-run on a CPU machine)"
        )
    return torch.device("cuda")


def _command_output(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return "not found"
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed: {exc}"
    return out.strip()


def _nvcc_version() -> str:
    text = _command_output("nvcc", "--version")
    match = re.search(r"release ([0-9.]+), (V[0-9.]+)", text)
    return f"{match.group(1)} ({match.group(2)})" if match else text.splitlines()[-1:][0]


def report(dry_run: bool) -> dict:
    """The machine, the versions and the measured copy bandwidth (GB/s, read + write)."""
    device = device_for(dry_run)
    env = harness.environment(device)
    env["git_sha"] = os.environ.get("GIT_SHA") or env["git_sha"]
    env["python"] = platform.python_version()
    env["torch_cuda"] = torch.version.cuda or "none"
    env["nvcc"] = _nvcc_version()
    env["cpu_cores"] = os.cpu_count()
    env["dry_run"] = dry_run
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["sm_count"] = props.multi_processor_count
        env["capability"] = f"{props.major}.{props.minor}"
        env["memory_gib"] = round(props.total_memory / 2**30, 1)
        env["l2_mib"] = round(getattr(props, "L2_cache_size", 0) / 2**20, 1)
        env["driver"] = _command_output(
            "nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"
        )
    # 2 GiB on a GPU (the anchors' size: far beyond L2); 64 MiB on a CPU dry run.
    env["copy_gbps"] = round(
        harness.copy_bandwidth(device, nbytes=2**31 if not dry_run else 2**26), 1
    )
    return env


def write(env: dict, out: Path) -> Path:
    path = out / ENV_FILE
    path.write_text(json.dumps(env, indent=1) + "\n")
    return path


def read(out: Path) -> dict:
    """The ``env`` step's record; a minimal one when that step did not finish."""
    path = out / ENV_FILE
    if path.exists():
        return json.loads(path.read_text())
    return {"device": "unknown (the env step did not finish)", "copy_gbps": 0.0}


def describe(env: dict) -> list[str]:
    """Four lines: the device, the versions, the code, the copy bandwidth (what is unknown of
    a run whose env step did not finish reads '?')."""
    get = lambda key: env.get(key, "?")  # noqa: E731
    where = (
        f"{get('sm_count')} SMs, sm_{str(get('capability')).replace('.', '')}, "
        f"{get('memory_gib')} GiB, L2 {get('l2_mib')} MiB, driver {get('driver')}"
        if "sm_count" in env
        else f"{get('threads')} threads"
    )
    return [
        f"device       {get('device')} ({where})",
        f"versions     python {get('python')}, torch {get('torch')} (CUDA {get('torch_cuda')}), "
        f"triton {get('triton')}, nvcc {get('nvcc')}",
        f"code         stylegan_fast {get('stylegan_fast')} ({get('git_sha')}), {get('date')}",
        f"copy         {float(env.get('copy_gbps') or 0):.1f} GB/s measured (device to device, "
        "read + write)",
    ]


def build_status(dry_run: bool) -> tuple[bool, str]:
    """``(reusable, why)``: whether the loaded ``_C`` was built for the running torch and, on
    a GPU, with CUDA kernels for this GPU's architecture."""
    from ... import _library

    ext = _library.EXTENSION
    if not ext.loaded:
        return False, f"stylegan_fast._C is not loaded: {ext.reason}"
    info = ext.build_info
    if info.get("torch_version") != torch.__version__:
        return False, f"built for torch {info.get('torch_version')}, running {torch.__version__}"
    if dry_run:
        return True, f"built for torch {torch.__version__} (CPU kernels suffice for a dry run)"
    if not info.get("with_cuda"):
        return False, "built without CUDA kernels"
    major, minor = torch.cuda.get_device_capability()
    archs = (info.get("cuda_arch_list") or "").replace("+PTX", "").replace(";", " ").split()
    if f"{major}.{minor}" not in archs:
        return False, f"built for {info.get('cuda_arch_list')}, this GPU is {major}.{minor}"
    return True, f"built for torch {torch.__version__} and sm_{major}{minor}"


def arch_of_visible_gpu() -> str:
    """``TORCH_CUDA_ARCH_LIST`` for the visible GPU alone (e.g. ``9.0``)."""
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}"
