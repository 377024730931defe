"""Errors raised for weight files. Both are ``ValueError``s so callers that catch bad input catch these too."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weight file is missing, unreadable, of an unknown layout, or does not fit the model; names the file."""


class WeightsNotFound(WeightsError):
    """The weights for a model are not on this machine and cannot be downloaded now; says what to fetch."""
