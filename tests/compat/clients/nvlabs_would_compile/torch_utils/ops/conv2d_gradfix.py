"""Stands for NVlabs' torch_utils/ops/conv2d_gradfix.py: install() must keep it out."""

raise RuntimeError("would compile CUDA: torch_utils/ops/conv2d_gradfix.py was imported")
