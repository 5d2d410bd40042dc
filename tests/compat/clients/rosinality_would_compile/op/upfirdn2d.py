"""Stands for rosinality's op/upfirdn2d.py."""

raise RuntimeError("would compile CUDA: op/upfirdn2d.py was imported")
