"""Arrow arrays handed to the C kernels in place: the records their sources read, no copies."""

from __future__ import annotations

import ctypes
from typing import Any

import pyarrow as pa


class ArrowColumn(ctypes.Structure):
    """A fixed-width Arrow array as the C kernels read it (``col`` in their sources): its buffers, in place."""

    _fields_ = [("values", ctypes.c_void_p), ("valid", ctypes.c_void_p), ("shift", ctypes.c_int64)]


def arrow_column(array: pa.Array) -> ArrowColumn:
    """``array``'s record; the validity bitmap only when something is null. The caller keeps ``array`` alive."""
    valid, values = array.buffers()[:2]
    return ArrowColumn(values.address if values is not None else None,
                       valid.address if valid is not None and array.null_count else None, array.offset)


class StringColumn(ctypes.Structure):
    """A string-view Arrow array as the C kernels read it (``strcol`` in their sources): its buffers, in place."""

    _fields_ = [("valid", ctypes.c_void_p), ("views", ctypes.c_void_p), ("bufs", ctypes.c_void_p), ("shift", ctypes.c_int64)]


def string_column(array: pa.Array) -> tuple[StringColumn, Any] | None:
    """The Arrow string-view buffers of ``array`` for the kernel and what keeps them alive; None
    for another layout.

    String views are Polars' own layout, handed over without a copy (converting them to offsets and
    one data buffer cost ~0.03 CPU-s per million rows and column).
    """
    if array.type != pa.string_view():
        return None
    valid, views, *data = array.buffers()
    bufs = (ctypes.c_void_p * max(len(data), 1))(*[b.address if b is not None else 0 for b in data])
    col = StringColumn(valid.address if valid is not None and array.null_count else None, views.address, ctypes.addressof(bufs), array.offset)
    return col, (array, bufs)
