"""Inference: the forward passes of a pruned network, how they are timed, and how one is served.

A reader studying accuracy can skip this subpackage. ``plans`` builds every forward pass of a
pruned network (PyTorch, ``engines``: onnxruntime and MKL, ``kernel``: the project's compiled
kernel); ``timing`` and ``benchmarking`` time them; ``serving.load`` serves the fastest one.
"""
