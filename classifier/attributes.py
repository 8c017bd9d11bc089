"""The label set shared by every part of the library."""

from __future__ import annotations

__all__ = ["ATTRIBUTES"]

ATTRIBUTES: tuple[str, ...] = (
    "toxic",
    "severe_toxic",
    "obscene",
    "threat",
    "insult",
    "identity_hate",
)
