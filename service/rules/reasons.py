"""The reason codes a decision carries, defined once, and the tags the queue filters them by.

Each reason is a JSON object `{"code": CODE, ...}` stored with the decision; what else it
holds depends on the code (the attribute, score and threshold; the language; the spans).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Reason", "reason_tags"]


class Reason:
    ATTRIBUTE_OVER_THRESHOLD = "attribute_over_threshold"
    ALL_BELOW_THRESHOLD = "all_below_threshold"  # an approval, explained by its nearest miss
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    AUTHOR_PREMODERATED = "author_premoderated"
    AUTHOR_TRUSTED = "author_trusted"
    AUTHOR_BANNED = "author_banned"
    BANNED_WORD = "banned_word"  # an entry of the site's banned list: rejected unscored
    SUSPECT_WORD = "suspect_word"  # an entry of its suspect list: held for a person
    SCORING_ERROR = "scoring_error"
    # Above an attribute's reject threshold: rejected without a person.
    ATTRIBUTE_OVER_REJECT_THRESHOLD = "attribute_over_reject_threshold"
    ARTICLE_CLOSED = "article_closed"  # rejected: the article takes no new comments
    PREMODERATE_ALL = "premoderate_all"  # the policy holds every comment
    NEW_COMMENTER = "new_commenter"  # fewer approved comments than the rule asks
    RECENT_REJECTIONS = "recent_rejections"  # the author's recent comments mostly rejected
    TOO_MANY_LINKS = "too_many_links"
    LINK_NOT_ALLOWED = "link_not_allowed"  # a link to a domain outside the allow-list
    LINK_FROM_NEW_COMMENTER = "link_from_new_commenter"
    REPEATED_TEXT = "repeated_text"  # the same text again and again
    FLOOD = "flood"  # too many comments a minute
    # The codes a moderator filters the queue by: every one but the approval's explanation.
    FILTERABLE: tuple[str, ...] = (
        ATTRIBUTE_OVER_THRESHOLD,
        UNSUPPORTED_LANGUAGE,
        AUTHOR_PREMODERATED,
        AUTHOR_TRUSTED,
        AUTHOR_BANNED,
        BANNED_WORD,
        SUSPECT_WORD,
        SCORING_ERROR,
        ATTRIBUTE_OVER_REJECT_THRESHOLD,
        ARTICLE_CLOSED,
        PREMODERATE_ALL,
        NEW_COMMENTER,
        RECENT_REJECTIONS,
        TOO_MANY_LINKS,
        LINK_NOT_ALLOWED,
        LINK_FROM_NEW_COMMENTER,
        REPEATED_TEXT,
        FLOOD,
    )


TAGS_MAX = 500  # Comment.reason_tags
_ATTRIBUTE_CODES = (Reason.ATTRIBUTE_OVER_THRESHOLD, Reason.ATTRIBUTE_OVER_REJECT_THRESHOLD)


def reason_tags(reasons: Sequence[dict[str, Any]]) -> str:
    """The decision's reasons as space-delimited tags the queue can filter with LIKE."""
    tags: list[str] = []
    for reason in reasons:
        if reason.get("code") and reason["code"] != Reason.ALL_BELOW_THRESHOLD:
            tags.append(f"code:{reason['code']}")
        if reason.get("code") in _ATTRIBUTE_CODES and reason.get("attribute"):
            tags.append(f"attribute:{reason['attribute']}")
    kept = list(dict.fromkeys(tags))
    # The column holds TAGS_MAX characters: a comment every rule fired on keeps the first tags
    # (the deciding rule's come first) rather than failing its batch on PostgreSQL.
    while kept and len(" ".join(kept)) + 2 > TAGS_MAX:
        kept.pop()
    return f" {' '.join(kept)} " if kept else ""
