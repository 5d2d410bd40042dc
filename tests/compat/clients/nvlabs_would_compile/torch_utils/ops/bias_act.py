"""Stands for NVlabs' torch_utils/ops/bias_act.py: install() must keep it from being imported."""

raise RuntimeError("would compile CUDA: torch_utils/ops/bias_act.py was imported")
