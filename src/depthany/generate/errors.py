"""Errors of depth-conditioned generation; each message names the model, file or argument at fault."""

from __future__ import annotations


class GenerateError(ValueError):
    """Generation cannot run: a missing extra, model or file, or a bad argument."""


class ModelNotFound(GenerateError):
    """A ControlNet or base model is not on this machine and cannot be downloaded now; says what to fetch."""


class PairError(GenerateError):
    """A ControlNet that does not fit the base model (names both)."""


class ControlNetFormatError(GenerateError):
    """A file that is not a readable ControlNet checkpoint, or whose weights do not match its config."""
