"""Compiled kernels: the build cache (``build.py``) and the Arrow buffers they read (``arrow.py``)."""
