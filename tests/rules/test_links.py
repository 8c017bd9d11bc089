"""Finding links the way a reader's browser would make them, not every dotted word."""

from __future__ import annotations

import pytest

from service.rules.links import domain_allowed, find_links


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("Read https://www.nytimes.com/2026/peace.html first.", ["www.nytimes.com"]),
        ("Full text at www.congress.gov.", ["www.congress.gov"]),
        ("Sources: bbc.co.uk/news and t.co/x3", ["bbc.co.uk", "t.co"]),
        ("(see http://127.0.0.1:8080/admin)", ["127.0.0.1"]),
        ("Mail me at someone@example.com please", []),
        ("The talks failed.It was expected", []),  # a missing space, not Italy
        ("They signed.Check the terms", []),  # not a public suffix
        ("I think the ceasefire will hold. Really.", []),
        ("GOOGLE.COM told me", ["google.com"]),
    ],
)
def test_links_are_what_a_browser_would_link(text: str, hosts: list[str]) -> None:
    assert [link.host for link in find_links(text)] == hosts


def test_a_link_has_its_span_in_the_original_text() -> None:
    text = "Look: example.org/a?b=1, then leave."
    (link,) = find_links(text)
    assert text[link.start : link.end] == link.url == "example.org/a?b=1"


def test_an_allowed_domain_allows_its_subdomains_only() -> None:
    allowed = ["example.com"]
    assert domain_allowed("example.com", allowed)
    assert domain_allowed("news.example.com", allowed)
    assert not domain_allowed("badexample.com", allowed)
    assert not domain_allowed("example.com.evil.net", allowed)


@pytest.mark.parametrize(
    "text",
    [
        "click https://evil.com\\.example.com/x",  # a browser goes to evil.com
        "click https://evil.com%2F.example.com/x",
        "click https://evil.com@example.com.evil.net/",
    ],
)
def test_a_host_written_to_look_allowed_is_not(text: str) -> None:
    (link,) = find_links(text)
    assert not domain_allowed(link.host, ["example.com"]), link.host
