"""Keep the calling thread's alternate signal stack across calls into native libraries that replace it.

OpenVINO's CPU plugin (measured with 2026.4) installs its own alternate signal stack (``sigaltstack``) on the
thread that compiles a model and unmaps that memory when its ``Core`` is destroyed, leaving the thread's
alternate stack pointing at unmapped memory. Python runs every signal handler it installs with ``SA_ONSTACK``,
so the next handled signal on that thread (Ctrl-C, or the ``SIGCHLD`` handler PyTorch's DataLoader installs,
when any child process ends) makes the kernel kill the process with ``SIGSEGV``. :func:`kept_sigaltstack`
restores the previous alternate stack (Python's faulthandler stack, or none) when the call returns.

    >>> from depthany.runtime.altstack import kept_sigaltstack
    >>> with kept_sigaltstack():
    ...     compiled = core.compile_model(model, "CPU")        # doctest: +SKIP

A no-op where ``sigaltstack`` cannot be called (not Linux/macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):
    """``stack_t`` (Linux and macOS layouts agree on the field order: pointer, flags, size)."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith(("linux", "darwin")):
        return None
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.sigaltstack  # noqa: B018 - raises AttributeError where it does not exist
        return lib
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def current() -> tuple[int, int, int] | None:
    """(address, flags, size) of the calling thread's alternate signal stack, or None where unsupported."""
    if _LIBC is None:
        return None
    st = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(st)) != 0:
        return None
    return int(st.ss_sp or 0), int(st.ss_flags), int(st.ss_size)


@contextmanager
def kept_sigaltstack() -> Iterator[None]:
    """Restore the calling thread's alternate signal stack on exit if the body replaced it."""
    if _LIBC is None:
        yield
        return
    before = _StackT()
    ok = _LIBC.sigaltstack(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        after = _StackT()
        if ok and _LIBC.sigaltstack(None, ctypes.byref(after)) == 0 and (after.ss_sp, after.ss_flags, after.ss_size) \
                != (before.ss_sp, before.ss_flags, before.ss_size):
            restore = _StackT(before.ss_sp, before.ss_flags & ~1, before.ss_size)  # SS_ONSTACK is read-only
            if not before.ss_sp:
                restore.ss_flags = 2  # SS_DISABLE: there was none
            _LIBC.sigaltstack(ctypes.byref(restore), None)
