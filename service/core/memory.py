"""Give the C library's freed heap back to the system after a large one-off load."""

from __future__ import annotations

import contextlib
import ctypes

__all__ = ["return_freed_memory"]


def return_freed_memory() -> None:
    """Loading a model reads and inflates files in buffers of tens of MB that are freed at once,
    but glibc keeps freed heap memory for reuse, so the process's RSS stays as if they were
    still held (about 23 MB for the toxicity model, 11 MB for the language detector). Hand it
    back; a no-op where the C library is not glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
