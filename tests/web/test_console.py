"""The admin console without a browser: who may see it, the site's policy, overrides of
articles and sections, the word lists, and that every form is CSRF-protected."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.core.tables import AuditEntry, Comment
from service.rules.overrides import get_policy
from service.rules.word_lists import get_list
from tests.web.conftest import Site, sign_in

POLICY = "/moderate/admin/policy"


def _policy(site: Site, scope: str = "site", key: str | None = None) -> dict[str, Any]:
    with site.sessions() as session:
        return dict(get_policy(session, "news", scope, key)["policy"])


def _entries(site: Site, kind: str) -> list[str]:
    with site.sessions() as session:
        entries = get_list(session, "news", kind)["entries"]
    assert isinstance(entries, list)
    return [str(entry) for entry in entries]


def _admin(site: Site, browser: TestClient) -> str:
    return sign_in(browser, site.keys["news-site_admin"])


def _input_value(html: str, name: str) -> str | None:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    return found.group(1) if found else None


def test_a_site_admin_sees_the_console_and_saves_the_policy(
    site: Site, browser: TestClient
) -> None:
    token = _admin(site, browser)
    assert 'href="/moderate/admin"' in browser.get("/moderate").text, "the nav links the console"
    home = browser.get("/moderate/admin")
    assert home.status_code == 200
    for section in ("policy", "articles", "sections", "lists"):
        assert f'href="/moderate/admin/{section}"' in home.text
    page = browser.get(POLICY).text
    assert 'placeholder="0.2"' in page, "blank fields show the deployment's default"
    assert '<label for="f-thresholds-toxic">' in page

    saved = browser.post(
        POLICY,
        data={
            "csrf_token": token,
            "action": "save",
            "thresholds.toxic": "0.55",
            "thresholds.insult": "",
            "premoderate_all": "",
            "rules": '{"links": {"max_links": 2}}',
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{POLICY}?done=saved"
    assert _policy(site) == {"thresholds": {"toxic": 0.55}, "rules": {"links": {"max_links": 2}}}
    shown = browser.get(saved.headers["location"]).text
    assert "Saved." in shown
    assert _input_value(shown, "thresholds.toxic") == "0.55"
    with site.sessions() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.event == "policy.updated"))
        (entry,) = audit.all()
    assert "site_admin key" in entry.actor
    assert entry.data["to"]["thresholds"] == {"toxic": 0.55}


def test_a_moderator_is_refused_the_console(site: Site, browser: TestClient) -> None:
    token = sign_in(browser, site.keys["news-moderator"])
    assert 'href="/moderate/admin"' not in browser.get("/moderate").text
    for path in ("/moderate/admin", POLICY, "/moderate/admin/articles/x", "/moderate/admin/lists"):
        refused = browser.get(path)
        assert refused.status_code == 403, path
        assert "for site admin and operator keys" in refused.text
    posted = browser.post(POLICY, data={"csrf_token": token, "thresholds.toxic": "0.9"})
    assert posted.status_code == 403
    listed = browser.post(
        "/moderate/admin/lists/banned", data={"csrf_token": token, "entries": "idiot"}
    )
    assert listed.status_code == 403
    assert _policy(site) == {} and _entries(site, "banned") == []


def test_a_threshold_out_of_range_is_named_and_nothing_is_saved(
    site: Site, browser: TestClient
) -> None:
    token = _admin(site, browser)
    refused = browser.post(
        POLICY,
        data={"csrf_token": token, "thresholds.toxic": "2", "thresholds.insult": "0.4"},
    )
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert "<code>thresholds.toxic</code>" in refused.text
    assert "between 0 and 1" in refused.text
    assert 'id="f-thresholds-toxic"' in refused.text and 'aria-invalid="true"' in refused.text
    assert _input_value(refused.text, "thresholds.toxic") == "2", "what was typed stays"
    assert _input_value(refused.text, "thresholds.insult") == "0.4"
    assert _policy(site) == {}


def test_a_bad_rules_box_and_a_wrong_number_are_named(site: Site, browser: TestClient) -> None:
    token = _admin(site, browser)
    refused = browser.post(
        POLICY,
        data={
            "csrf_token": token,
            "thresholds.threat": "high",
            "rules": '{"links": {"max_links": -1}}',
        },
    )
    assert refused.status_code == 422
    assert "<code>thresholds.threat</code>" in refused.text
    assert "<code>rules.links.max_links</code>" in refused.text
    assert _policy(site) == {}


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    site: Site, browser: TestClient
) -> None:
    _admin(site, browser)
    for path, data in (
        (POLICY, {"thresholds.toxic": "0.9"}),
        ("/moderate/admin/lists/banned", {"entries": "idiot"}),
        ("/moderate/admin/articles/peace-talks", {"closed": "true"}),
        ("/moderate/admin/sections/world", {"closed": "true"}),
    ):
        refused = browser.post(path, data={**data, "csrf_token": "forged" * 8})
        assert refused.status_code == 403, path
        assert "Nothing was changed" in refused.text
        assert browser.post(path, data=data).status_code == 403
    assert _policy(site) == {} and _entries(site, "banned") == []
    assert _policy(site, "article", "peace-talks") == {}


def test_the_preview_shows_hold_rates_of_typed_thresholds_and_saves_nothing(
    site: Site, browser: TestClient
) -> None:
    for i, score in enumerate((0.9, 0.6, 0.3, 0.1)):
        site.held(f"c{i}", "text", score=score)  # scores: toxic = score, insult = score / 2
    token = _admin(site, browser)
    page = browser.get(POLICY).text
    toxic = re.search(r'<tr data-attribute="toxic">.*?</tr>', page, re.S)
    assert toxic and "75.0%" in toxic.group(0), "at the default 0.2: 3 of 4 held"
    trial = browser.post(
        POLICY, data={"csrf_token": token, "action": "preview", "thresholds.toxic": "0.5"}
    )
    assert trial.status_code == 200
    toxic = re.search(r'<tr data-attribute="toxic">.*?</tr>', trial.text, re.S)
    assert toxic and "50.0%" in toxic.group(0)
    assert "nothing is saved yet" in trial.text
    assert _policy(site) == {}


def test_closing_an_article_shows_in_its_effective_policy_and_deleting_reopens_it(
    site: Site, browser: TestClient
) -> None:
    site.held("c1", "text", article="peace-talks")
    site.held("c2", "text", article="Sports/Final")
    token = _admin(site, browser)
    listing = browser.get("/moderate/admin/articles").text
    assert re.findall(r'<tr data-key="([^"]+)"', listing) == ["Sports/Final", "peace-talks"]
    found = browser.get("/moderate/admin/articles?q=PEACE").text
    assert re.findall(r'<tr data-key="([^"]+)"', found) == ["peace-talks"]
    assert 'href="/moderate/admin/articles/peace-talks"' in found

    url = "/moderate/admin/articles/peace-talks"
    saved = browser.post(url, data={"csrf_token": token, "action": "save", "closed": "true"})
    assert saved.status_code == 303 and saved.headers["location"] == f"{url}?done=saved"
    assert _policy(site, "article", "peace-talks") == {"closed": True}
    page = browser.get(url).text
    assert 'id="closed-badge"' in page
    assert '<dd data-setting="closed">True</dd>' in page
    assert "From: defaults, article" in page
    assert "overridden" in browser.get("/moderate/admin/articles").text

    deleted = browser.post(url, data={"csrf_token": token, "action": "delete"})
    assert deleted.status_code == 303
    assert _policy(site, "article", "peace-talks") == {}
    assert 'id="closed-badge"' not in browser.get(url).text
    again = browser.post(url, data={"csrf_token": token, "action": "delete"})
    assert again.status_code == 404 and "has no policy of its own" in again.text


def test_an_article_with_a_slash_in_its_id_has_its_own_page(
    site: Site, browser: TestClient
) -> None:
    token = _admin(site, browser)
    url = "/moderate/admin/articles/Sports/Final%3F"
    saved = browser.post(url, data={"csrf_token": token, "premoderate_all": "true"})
    assert saved.headers["location"] == f"{url}?done=saved"
    assert _policy(site, "article", "Sports/Final?") == {"premoderate_all": True}


def test_a_sections_override_reaches_its_articles(site: Site, browser: TestClient) -> None:
    comment_id = site.held("c1", "text", article="peace-talks")
    with site.sessions.begin() as session:
        session.execute(update(Comment).where(Comment.id == comment_id).values(section="world"))
    token = _admin(site, browser)
    assert re.findall(r'<tr data-key="([^"]+)"', browser.get("/moderate/admin/sections").text) == [
        "world"
    ]
    saved = browser.post(
        "/moderate/admin/sections/world", data={"csrf_token": token, "premoderate_all": "true"}
    )
    assert saved.status_code == 303
    assert _policy(site, "section", "world") == {"premoderate_all": True}
    article = browser.get("/moderate/admin/articles/peace-talks").text
    assert "From: defaults, section" in article
    assert 'id="premoderated-badge"' in article


def test_an_override_that_breaks_the_reject_band_is_refused_by_name(
    site: Site, browser: TestClient
) -> None:
    token = _admin(site, browser)
    refused = browser.post(
        "/moderate/admin/articles/peace-talks",
        data={"csrf_token": token, "reject_thresholds.toxic": "0.1"},  # under the 0.2 default
    )
    assert refused.status_code == 422
    assert "<code>reject_thresholds</code>" in refused.text
    assert _policy(site, "article", "peace-talks") == {}


def test_word_lists_save_one_entry_a_line_and_a_bad_entry_changes_nothing(
    site: Site, browser: TestClient
) -> None:
    token = _admin(site, browser)
    saved = browser.post(
        "/moderate/admin/lists/banned",
        data={"csrf_token": token, "entries": "idiot\n\n  moron*  \nshut up\n"},
    )
    assert saved.status_code == 303
    assert _entries(site, "banned") == ["idiot", "moron*", "shut up"]
    page = browser.get("/moderate/admin/lists").text
    assert ">idiot\nmoron*\nshut up</textarea>" in page

    refused = browser.post(
        "/moderate/admin/lists/banned",
        data={"csrf_token": token, "entries": "fool\n\na*\n"},
    )
    assert refused.status_code == 422
    assert "<code>entries[1]</code>" in refused.text
    assert "line 3:" in refused.text and "wildcard" in refused.text
    assert ">fool\n\na*\n</textarea>" in refused.text, "what was typed stays"
    assert _entries(site, "banned") == ["idiot", "moron*", "shut up"]
    assert _entries(site, "suspect") == []
    assert (
        browser.post(
            "/moderate/admin/lists/nice", data={"csrf_token": token, "entries": "x"}
        ).status_code
        == 422
    )
