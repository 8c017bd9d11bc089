"""A reader comment as a site backend posts it: the one input shape of intake, whichever face
(the API, a compatibility route, a test) it came through."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CommentIn", "no_nul"]

_MAX_METADATA_BYTES = 4096


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class CommentIn(BaseModel):
    """One reader comment as a site backend posts it."""

    model_config = ConfigDict(extra="forbid", str_max_length=200)

    external_id: str = Field(min_length=1, description="The site's own id; unique per site.")
    article_id: str = Field(min_length=1)
    author_id: str = Field(min_length=1)
    # The length limit is a setting, checked by intake; here only the hard type rules.
    text: str = Field(min_length=1, max_length=1_000_000)
    parent_id: str | None = Field(
        default=None, min_length=1, description="external_id of the parent comment"
    )
    section: str | None = Field(default=None, min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("external_id", "article_id", "author_id", "parent_id", "section")
    @classmethod
    def _ids_are_clean(cls, value: str | None) -> str | None:
        if value is None:
            return value
        no_nul(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("text")
    @classmethod
    def _text_is_clean(cls, value: str) -> str:
        no_nul(value)
        if not value.strip():
            raise ValueError("must not be empty or whitespace only")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any]) -> dict[str, Any]:

        try:
            size = len(orjson.dumps(value))
        except TypeError as exc:  # pragma: no cover - JSON input is always serialisable
            raise ValueError("must be a JSON object") from exc
        if size > _MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {_MAX_METADATA_BYTES} bytes as JSON")
        if b"\\u0000" in orjson.dumps(value):
            raise ValueError("must not contain NUL characters")
        return value
