"""Coral's external moderation phase on the wire: its signature, its request, our answer."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from service.core.errors import InvalidInput
from service.rules.policy import Verdict
from service.rules.reasons import Reason

__all__ = [
    "SIGNATURE_HEADER",
    "UNSCORED_ROLES",
    "CoralRequest",
    "CoralRequestInvalid",
    "CoralRequestMalformed",
    "coral_answer",
    "html_to_text",
    "parse_request",
    "rejection_code",
    "sign",
    "signature_matches",
]

SIGNATURE_HEADER = "X-Coral-Signature"
# Coral's own staff publish unscored, as Coral itself lets them.
UNSCORED_ROLES = frozenset({"STAFF", "MODERATOR", "ADMIN"})
WITHHELD: dict[str, Any] = {
    "status": "SYSTEM_WITHHELD",
    "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
}
# Coral's rejection codes closest to our reasons; anything else over a threshold is ABUSIVE.
_ATTRIBUTE_CODES = {
    "identity_hate": "HATE_SPEECH",
    "threat": "HARASSMENT_BULLYING",
    "obscene": "OFFENSIVE",
}
# A banned author's comment is rejected unread: Coral has no code for that, so OTHER, with
# the reason in the explanation.
_REASON_CODES = {
    Reason.AUTHOR_BANNED: "OTHER",
    Reason.BANNED_WORD: "BANNED_WORD",
    Reason.ARTICLE_CLOSED: "OTHER",
}
_SCORED_CODES = (Reason.ATTRIBUTE_OVER_THRESHOLD, Reason.ATTRIBUTE_OVER_REJECT_THRESHOLD)
# Held because of who wrote it or where, not what it says: Coral's own pre-moderation status.
_PREMODERATION = frozenset(
    {
        Reason.PREMODERATE_ALL,
        Reason.AUTHOR_PREMODERATED,
        Reason.NEW_COMMENTER,
        Reason.RECENT_REJECTIONS,
    }
)
# Held as spam rather than as toxic: Coral's flag reason for it.
_SPAM = frozenset(
    {
        Reason.TOO_MANY_LINKS,
        Reason.LINK_NOT_ALLOWED,
        Reason.LINK_FROM_NEW_COMMENTER,
        Reason.REPEATED_TEXT,
        Reason.FLOOD,
    }
)


# --- the signature ---------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of the raw body: one entry of Coral's signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, *, header: str | None) -> bool:
    """Whether any of the header's comma-separated signatures (several while Coral rotates its
    secret) is the body's, compared in constant time."""
    if not secret or not header:
        return False
    expected = sign(secret, body).encode()
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a header may hold any.
    candidates = (part.strip().lower().encode("utf-8", "replace") for part in header.split(","))
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- the request -----------------------------------------------------------------------------

_Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Part(BaseModel):
    # Coral may add fields; what we do not read is no reason to refuse its call.
    model_config = ConfigDict(extra="ignore")


class CoralComment(_Part):
    body: str
    parentID: str | None = None


class CoralAuthor(_Part):
    id: _Id  # the site's author id: an author's trust is looked up by it
    role: Annotated[str, StringConstraints(max_length=50)]


class CoralStory(_Part):
    id: str | None = None
    url: str | None = None


class CoralSite(_Part):
    id: str | None = None


class CoralRequest(_Part):
    """What Coral posts for each new or edited comment (it sends no comment id)."""

    action: Literal["NEW", "EDIT"]
    comment: CoralComment
    author: CoralAuthor
    story: CoralStory | None = None
    site: CoralSite | None = None
    tenantID: str | None = None
    tenantDomain: str | None = None


class CoralRequestInvalid(InvalidInput):
    """The body is JSON but not the shape of Coral's call."""

    status_code = 400


class CoralRequestMalformed(CoralRequestInvalid):
    code = "malformed_json"


def parse_request(raw: bytes) -> CoralRequest:
    """Coral's call from its raw body; CoralRequestInvalid naming the first bad field."""
    try:
        return CoralRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise CoralRequestMalformed("the body is not valid JSON") from None
        field = ".".join(str(part) for part in first["loc"]) or None
        message = "field required" if first["type"] == "missing" else first["msg"]
        detail = f"{field or 'the body'}: {message}"
        raise CoralRequestInvalid(detail, field=field) from None


# --- the comment's HTML ----------------------------------------------------------------------

_BREAKS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "blockquote", "pre", "tr", "hr"}
    | {f"h{level}" for level in range(1, 7)}
)
_SKIPPED = frozenset({"script", "style"})  # their content is no text a reader sees
_TAG_NAME = re.compile(r"(/?)([A-Za-z][A-Za-z0-9-]*)")
_TAG_END_OR_QUOTE = re.compile(r"[>\"']")
_WHITESPACE = re.compile(r"\s+")
_CLOSERS = {tag: re.compile(f"</{tag}", re.IGNORECASE) for tag in _SKIPPED}


def _tag_end(markup: str, start: int) -> int:
    """Where the tag opened before `start` ends (after its `>`, skipping quoted attribute
    values), or -1 when it never does."""
    position = start
    while (found := _TAG_END_OR_QUOTE.search(markup, position)) is not None:
        if found.group() == ">":
            return found.end()
        close = markup.find(found.group(), found.end())
        if close == -1:
            return -1
        position = close + 1
    return -1


def _pieces(markup: str) -> Iterator[str]:
    """The text between tags, and a newline for each tag that breaks a line.

    A single forward pass: every search starts where the last one ended, so the work is linear
    in the body whatever it holds (the standard library's HTMLParser is quadratic on some
    unclosed markup: 60 KB of `<a ` take it 25 s on Python 3.11).
    """
    position = 0
    while (opening := markup.find("<", position)) != -1:
        yield markup[position:opening]
        name = _TAG_NAME.match(markup, opening + 1)
        if markup.startswith("<!--", opening):
            close = markup.find("-->", opening + 4)
            position = -1 if close == -1 else close + 3
        elif name is not None or markup.startswith(("<!", "<?"), opening):
            position = _tag_end(markup, opening + 1)
        else:
            yield "<"  # a lone "<", as in "a < b", is text
            position = opening + 1
            continue
        tag = name.group(2).lower() if name is not None else ""
        if position != -1 and tag in _SKIPPED and name is not None and not name.group(1):
            close_tag = _CLOSERS[tag].search(markup, position)
            position = -1 if close_tag is None else _tag_end(markup, close_tag.end())
        if position == -1:
            return  # markup left open at the end shows nothing
        if tag in _BREAKS:
            yield "\n"
    yield markup[position:]


def html_to_text(markup: str) -> str:
    """The text a reader sees in a comment's HTML: tags dropped, entities unescaped, a line
    per paragraph or line break, spaces collapsed."""
    parts = (
        piece if piece == "\n" else _WHITESPACE.sub(" ", html.unescape(piece))
        for piece in _pieces(markup)
    )
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


# --- our answer ------------------------------------------------------------------------------


def rejection_code(reasons: Sequence[dict[str, Any]]) -> str:
    """Coral's rejection code closest to the first of our reasons that has one."""
    for reason in reasons:
        if reason.get("code") in _REASON_CODES:
            return _REASON_CODES[reason["code"]]
        if reason.get("code") in _SCORED_CODES:
            return _ATTRIBUTE_CODES.get(str(reason.get("attribute")), "ABUSIVE")
    return "ABUSIVE"


def _explanation(reasons: Sequence[dict[str, Any]]) -> str:
    named = (
        f"{r['code']} ({r['attribute']})" if r.get("attribute") else str(r.get("code"))
        for r in reasons
        if r.get("code")
    )
    return ", ".join(dict.fromkeys(named)) or "rejected by the site's policy"


def coral_answer(verdict: Verdict) -> dict[str, Any] | None:
    """Coral's answer to our verdict; None (answer 204) when the comment may go on.

    An approval is no opinion rather than APPROVED: a status ends Coral's pipeline, and its
    later phases (pre-moderation of new commenters, say) must still run.
    """
    if verdict.action == "approve":
        return None
    if verdict.action == "reject":
        return {
            "status": "REJECTED",
            "moderationAction": {
                "status": "REJECTED",
                "rejectionReason": {
                    "code": rejection_code(verdict.reasons),
                    "detailedExplanation": _explanation(verdict.reasons),
                },
            },
        }
    # A hold, or anything we do not know: a moderator looks, as for any held comment.
    first = verdict.reasons[0].get("code") if verdict.reasons else None
    if first in _PREMODERATION:
        return {"status": "PREMOD"}
    if first in _SPAM:
        return {
            "status": WITHHELD["status"],
            "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
        }
    return {"status": WITHHELD["status"], "actions": [dict(a) for a in WITHHELD["actions"]]}
