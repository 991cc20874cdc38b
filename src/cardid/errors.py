"""User-facing errors: one clear line naming what is wrong and where."""

from __future__ import annotations


class CardIDError(Exception):
    """An error caused by input or configuration, reported to the user as one line (exit code 1)."""


class CatalogError(CardIDError):
    """A catalog, its metadata or its images are missing, unreadable or inconsistent."""


class ImageError(CardIDError):
    """An image file is missing, corrupt or unsupported."""


class PreprocessMismatch(CardIDError):
    """Two preprocessing contracts that must be identical differ."""


class DBError(CardIDError):
    """A reference DB is missing, corrupt, inconsistent, or built by another model."""
