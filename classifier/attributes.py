"""The label set shared by every part of the library, and by the service that serves it."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ATTRIBUTES", "Attribute"]

# The one list: the API's attribute fields (their OpenAPI enum) are typed with it, and every
# other list of attributes comes from ATTRIBUTES.
Attribute = Literal["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
ATTRIBUTES: tuple[str, ...] = get_args(Attribute)
