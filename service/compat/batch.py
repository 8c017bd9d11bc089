"""Google's batch format: many API calls in one multipart/mixed request, answered in one
multipart/mixed response (google-api-python-client's `new_batch_http_request`, and the
benchmark harnesses that score thousands of comments through it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson

from service.compat.errors import GoogleError

__all__ = ["MAX_CALLS", "Answer", "Call", "batch_response", "parse_batch"]

MAX_CALLS = 100


@dataclass(frozen=True)
class Call:
    """One call of a batch: its Content-ID, method, path, query and JSON body."""

    content_id: str
    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    content_id: str
    status: int
    body: dict[str, object]


def _call(part: Message, index: int) -> Call:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise GoogleError(f"Batch part {index} holds no HTTP request.")
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    request_line = head.split(b"\n", 1)[0].decode("latin-1").split()
    if len(request_line) < 2:
        raise GoogleError(f"Batch part {index} does not start with an HTTP request line.")
    target = urlsplit(request_line[1])
    query = {k: v[-1] for k, v in parse_qs(target.query).items()}
    content_id = str(part.get("Content-ID") or f"<item{index}>")
    return Call(content_id, request_line[0].upper(), target.path, query, body.strip())


def parse_batch(content_type: str, raw: bytes) -> list[Call]:
    """The calls of a multipart/mixed batch, in order; a Google-shaped 400 if it is not one."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise GoogleError("A batch request must be multipart/mixed.")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    parts = message.get_payload() if message.is_multipart() else []
    if not isinstance(parts, list) or not parts:
        raise GoogleError("The batch holds no calls.")
    if len(parts) > MAX_CALLS:
        raise GoogleError(f"A batch may hold at most {MAX_CALLS} calls, not {len(parts)}.")
    return [_call(part, i) for i, part in enumerate(parts)]


def _response_id(content_id: str) -> str:
    # Google answers <x> with <response-x>; the client reads the id after the "+".
    inner = content_id.strip().removeprefix("<").removesuffix(">")
    return f"<response-{inner}>"


def batch_response(answers: Sequence[Answer]) -> tuple[bytes, str]:
    """The multipart/mixed answer to a batch, and its content type."""
    boundary = f"batch_{uuid.uuid4().hex}"
    chunks = []
    for answer in answers:
        reason = HTTPStatus(answer.status).phrase
        body = orjson.dumps(answer.body)
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-ID: {_response_id(answer.content_id)}\r\n\r\n"
            f"HTTP/1.1 {answer.status} {reason}\r\n"
            f"Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"
