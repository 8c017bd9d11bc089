"""What a policy body may say, at any level (site, section, article), and how levels combine.

A body names only what it changes: a section's `{"thresholds": {"toxic": 0.5}}` keeps every
other threshold and rule of its site. Levels merge most specific last: maps (`thresholds`,
`reject_thresholds`) key by key, each rule field by field, anything else replaced. A rule is on
once a level names it and off again with `{"enabled": false}`; every rule is off by default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from classifier.attributes import Attribute

__all__ = [
    "CLOSED_ACTIONS",
    "FloodRule",
    "LinksRule",
    "NewCommenterRule",
    "PolicyBody",
    "RecentRejectionsRule",
    "Rules",
    "check_bands",
    "merge_policies",
]

CLOSED_ACTIONS = ("refuse", "reject")
MAX_DOMAINS = 1000
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinksRule(_Strict):
    """Hold a comment with more than `max_links` links, a link to a domain outside
    `allowed_domains` (a domain allows its subdomains), or any link from an author with fewer
    than `min_approved` approved comments."""

    enabled: bool = True
    max_links: int | None = Field(default=None, ge=0, le=1000)
    allowed_domains: list[str] | None = Field(default=None, max_length=MAX_DOMAINS)
    min_approved: int = Field(default=0, ge=0, le=100_000)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = []
        for i, raw in enumerate(value):
            domain = raw.strip().lower().removeprefix("*.").removeprefix(".").rstrip(".")
            if not _DOMAIN.match(domain):
                raise ValueError(f"allowed_domains[{i}] {raw!r} is not a domain like example.com")
            cleaned.append(domain)
        return list(dict.fromkeys(cleaned))


class FloodRule(_Strict):
    """Hold an author's comment when the same (normalised) text came more than `max_repeats`
    times in `repeat_window_minutes`, or more than `max_per_minute` comments came in a minute."""

    enabled: bool = True
    max_repeats: int | None = Field(default=None, ge=1, le=10_000)
    repeat_window_minutes: float = Field(default=10.0, gt=0, le=1440)
    max_per_minute: int | None = Field(default=None, ge=1, le=10_000)


class NewCommenterRule(_Strict):
    """Hold an author's comments until `approved_comments` of them were approved (Coral's
    new-commenter pre-moderation)."""

    enabled: bool = True
    approved_comments: int = Field(default=3, ge=1, le=10_000)


class RecentRejectionsRule(_Strict):
    """Hold an author whose comments decided in the last `window_days` were rejected at a rate
    of `rate` or more, once at least `min_decided` were decided (Coral's recent history)."""

    enabled: bool = True
    rate: float = Field(default=0.5, gt=0.0, le=1.0)
    window_days: float = Field(default=7.0, gt=0, le=365)
    min_decided: int = Field(default=3, ge=1, le=10_000)


class Rules(_Strict):
    links: LinksRule | None = None
    flood: FloodRule | None = None
    new_commenter: NewCommenterRule | None = None
    recent_rejections: RecentRejectionsRule | None = None


def _between_0_and_1(value: dict[str, float] | None) -> dict[str, float] | None:
    bad = sorted(k for k, v in (value or {}).items() if not 0.0 <= v <= 1.0)
    if bad:
        raise ValueError(f"thresholds must be between 0 and 1: {', '.join(bad)}")
    return value


class PolicyBody(_Strict):
    """One level's policy. Attributes and rules it does not name come from the level above."""

    thresholds: dict[Attribute, float] | None = Field(
        default=None, description="Hold when an attribute's score reaches its threshold."
    )
    reject_thresholds: dict[Attribute, float] | None = Field(
        default=None,
        description="Reject without a person when an attribute's score reaches this; "
        "at or above the attribute's hold threshold. Off by default.",
    )
    unsupported_language: Literal["hold", "approve"] | None = None
    trusted_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    rules: Rules | None = None
    premoderate_all: bool | None = Field(
        default=None, description="Hold every comment for a moderator."
    )
    closed: bool | None = Field(default=None, description="Take no new comments.")
    closed_action: Literal["refuse", "reject"] | None = Field(
        default=None,
        description="On a closed article: `refuse` answers 409 (the default), `reject` "
        "stores the comment rejected with the reason article_closed.",
    )

    @field_validator("thresholds", "reject_thresholds")
    @classmethod
    def _in_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _between_0_and_1(value)

    @model_validator(mode="after")
    def _reject_above_hold(self) -> PolicyBody:
        check_bands(self.thresholds or {}, self.reject_thresholds or {})
        return self

    def stored(self) -> dict[str, Any]:
        """What is kept: only what the body names."""
        return self.model_dump(exclude_unset=True, exclude_none=False)


def check_bands(thresholds: Mapping[Any, float], reject: Mapping[Any, float]) -> None:
    """A reject threshold below its hold threshold would reject what is not even held."""
    low = sorted(a for a, r in reject.items() if a in thresholds and r < thresholds[a])
    if low:
        raise ValueError(
            f"reject_thresholds must be at or above the hold thresholds: {', '.join(low)}"
        )


def merge_policies(*levels: Mapping[str, Any]) -> dict[str, Any]:
    """The levels' bodies combined, the last one most specific."""
    merged: dict[str, Any] = {}
    for level in levels:
        for key, value in level.items():
            if value is None:
                continue
            if key in ("thresholds", "reject_thresholds"):
                merged[key] = {**merged.get(key, {}), **value}
            elif key == "rules":
                rules = dict(merged.get("rules", {}))
                for name, settings in value.items():
                    if settings is not None:
                        rules[name] = {**rules.get(name, {}), **settings}
                merged["rules"] = rules
            else:
                merged[key] = value
    return merged
