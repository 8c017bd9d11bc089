"""The links in a comment, with where each is and the host it points at.

A link is what a reader's browser or a comment system would make one of: a URL with a scheme
(`https://...`), one beginning `www.`, or a bare `name.tld/...` whose last label is a real
public suffix (`tldextract`'s bundled Public Suffix List, read offline). A bare name needs its
suffix in one case, so the typo "talks.It" is not a link to Italy while "bbc.co.uk" is.
A regular expression finds the candidates, in the few comments a quick scan lets through; a
general URL extractor that tries every dot cost ~1 ms a news comment here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import tldextract

__all__ = ["Link", "domain_allowed", "find_links", "load_suffix_list"]

# Punctuation that ends a sentence around a link rather than belonging to it.
_TRAILING = ".,;:!?)]}'\"\u00bb\u201d\u2019"
_CANDIDATE = re.compile(
    r"(?i)\b(?:https?|ftp)://[^\s<>\"]+"  # a scheme: a link whatever the host
    r"|\bwww\.[^\s<>\"]+"
    r"|(?<![\w@.\-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b(?::\d{1,5})?"
    r"(?:/[^\s<>\"]*)?"
)
_SCHEME = re.compile(r"(?i)^(?:https?|ftp)://")
# Every link holds a dot between a letter or digit and a letter, or a scheme's "://": most
# comments hold neither, and this scan costs a fraction of the full pattern's.
_PLAIN_HOST = re.compile(r"[a-z0-9.-]+")
_MAYBE = re.compile(r"[A-Za-z0-9-]\.[A-Za-z]|://")


@dataclass(frozen=True)
class Link:
    url: str  # as written
    host: str  # lower case, no port
    start: int
    end: int


@functools.cache
def _extract() -> tldextract.TLDExtract:
    # No fetch and no cache directory: the snapshot bundled with the package.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def load_suffix_list() -> None:
    """Build the suffix list now (~0.2 s): the first comment with a link must not wait."""
    _extract()("example.com")


def _host(url: str) -> str:
    # A browser reads a backslash as a slash: "https://evil.com\\.example.com" goes to evil.com.
    target = (url if _SCHEME.match(url) else f"http://{url}").replace("\\", "/")
    try:
        return (urlsplit(target).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _bare_is_link(host: str, written: str) -> bool:
    suffix = _extract()(host).suffix
    if not suffix:
        return False
    tail = written.split("/", 1)[0].split(":", 1)[0].rsplit(".", 1)[-1]
    return tail.islower() or tail.isupper()


def find_links(text: str) -> list[Link]:
    if _MAYBE.search(text) is None:
        return []
    found = []
    for match in _CANDIDATE.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        host = _host(url).lower()
        if not host:
            continue
        if not _SCHEME.match(url) and not _bare_is_link(host, url):
            continue
        found.append(Link(url, host, match.start(), match.start() + len(url)))
    return found


def domain_allowed(host: str, allowed: list[str]) -> bool:
    """Whether the host is an allowed domain or one of its subdomains. A host a browser would
    read otherwise than it is written (escapes, odd characters) is never allowed."""
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return False
    if not _PLAIN_HOST.fullmatch(host):
        return False
    return any(host == domain or host.endswith("." + domain) for domain in allowed)
