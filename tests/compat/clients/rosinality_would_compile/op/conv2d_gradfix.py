"""Stands for rosinality's op/conv2d_gradfix.py."""

raise RuntimeError("would compile CUDA: op/conv2d_gradfix.py was imported")
