"""Stands for NVlabs' torch_utils/ops/upfirdn2d.py: install() must keep it from being imported."""

raise RuntimeError("would compile CUDA: torch_utils/ops/upfirdn2d.py was imported")
