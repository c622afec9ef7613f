"""What the inspector reports."""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):
    """One sensitive value in a text.

    ``start``/``end`` are Python string indices into the original (not the normalized) text, so
    ``text[start:end]`` is exactly what the caller sent.
    """

    detector: str
    """Detector id, e.g. ``br.cpf`` (SPEC section 6)."""
    category: str
    """One of the categories of SPEC section 6, e.g. ``national_id``."""
    country: str | None
    """ISO 3166-1 alpha-2 of the data subject's country, or None for international detectors."""
    start: int
    end: int
