"""A site's policy and its overrides per section and per article: read, replace, delete, and
resolve most specific first (site, then the comment's section, then its article).

Every change is in the audit log with the body before and after, and moves the site's
`policy_version`: a worker (or an API process) holding the site's policies reloads them when
the version it sees on a comment's site differs from the one it loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.core.audit import audit_site
from service.core.db import PerDatabase, engine_of
from service.core.errors import InvalidInput, NotFound
from service.core.lookup import site_named
from service.core.tables import Comment, PolicyOverride, Site, utcnow
from service.rules.policy import LanguageAction, Policy, resolve_policy
from service.rules.policy_body import PolicyBody, check_bands, merge_policies

__all__ = [
    "SCOPES",
    "SitePolicies",
    "current_policies",
    "delete_policy",
    "effective_view",
    "get_policy",
    "put_policy",
    "site_policies",
]

SCOPES = ("site", "section", "article")
MAX_KEY_CHARS = 200
# A worker remembers this many resolved (section, article) policies per site.
RESOLVED_CACHE = 4096
ARTICLE_CACHE = 50_000  # article bodies (or their absence) a process remembers per site


def _scope(scope: str, key: str | None) -> str | None:
    if scope not in SCOPES:
        raise InvalidInput(f"a policy's scope is one of: {', '.join(SCOPES)}", field="scope")
    if scope == "site":
        return None
    # Named exactly as comments name it (CommentIn: 1 to 200 characters, not blank).
    if not key or not key.strip() or len(key) > MAX_KEY_CHARS or "\x00" in key:
        raise InvalidInput(f"a {scope} is named by 1 to {MAX_KEY_CHARS} characters", field=scope)
    return key


def _view(site: Site, scope: str, key: str | None, body: Mapping[str, Any], at: Any) -> dict:
    named = {"section": key} if scope == "section" else {"article_id": key} if key else {}
    return {"site": site.name, "scope": scope, **named, "policy": dict(body), "updated_at": at}


def get_policy(session: Session, site_name: str, scope: str, key: str | None) -> dict[str, Any]:
    """The level's own body ({} when it has none)."""
    site = site_named(session, site_name)
    key = _scope(scope, key)
    if key is None:
        return _view(site, scope, None, site.policy or {}, None)
    row = session.get(PolicyOverride, (site.id, scope, key))
    return _view(site, scope, key, row.policy if row else {}, row.updated_at if row else None)


def put_policy(
    session: Session,
    site_name: str,
    scope: str,
    key: str | None,
    body: PolicyBody,
    *,
    actor: str,
    defaults: Mapping[str, float],
) -> dict[str, Any]:
    """Replace the level's body; the result must still hold together with the site's."""
    site = site_named(session, site_name)
    key = _scope(scope, key)
    stored = body.stored()
    _check_with_site(session, site, key, stored, defaults)
    if key is None:
        before, site.policy = site.policy or {}, stored
    else:
        row = session.get(PolicyOverride, (site.id, scope, key))
        before = row.policy if row else {}
        _upsert(session, site.id, scope, key, stored)
        if row is not None:  # the ORM must not answer with the body it read before
            session.expire(row)
    _changed(session, site, actor, "policy.updated", scope, key, before, stored)
    return get_policy(session, site_name, scope, key)


def _upsert(session: Session, site_id: int, scope: str, key: str, body: dict[str, Any]) -> None:
    """Insert or replace in one statement: two admins saving the same new override at once
    both succeed (the later wins) instead of one failing on the primary key."""
    dialect = engine_of(session).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    session.execute(
        insert(PolicyOverride)
        .values(site_id=site_id, scope=scope, key=key, policy=body, updated_at=now)
        .on_conflict_do_update(
            index_elements=["site_id", "scope", "key"], set_={"policy": body, "updated_at": now}
        )
    )


def delete_policy(
    session: Session, site_name: str, scope: str, key: str | None, *, actor: str
) -> dict[str, Any]:
    """Drop the level's body: the site's goes back to the defaults, an override to its site's."""
    site = site_named(session, site_name)
    key = _scope(scope, key)
    if key is None:
        before, site.policy = site.policy or {}, {}
    else:
        row = session.get(PolicyOverride, (site.id, scope, key))
        if row is None:
            raise NotFound(f"the {scope} {key!r} has no policy of its own", field=scope)
        before = row.policy
        session.delete(row)
    _changed(session, site, actor, "policy.deleted", scope, key, before, {})
    return get_policy(session, site_name, scope, key)


def _check_with_site(
    session: Session,
    site: Site,
    key: str | None,
    stored: Mapping[str, Any],
    defaults: Mapping[str, float],
) -> None:
    """The written level must hold together with its site, and a site's with each of its
    sections. (Any other mix is made safe where policies resolve: a band is never below the
    hold threshold in force.)"""
    if key is not None:
        combinations = [[site.policy or {}, stored]]
    else:
        sections = session.scalars(
            select(PolicyOverride.policy).where(
                PolicyOverride.site_id == site.id, PolicyOverride.scope == "section"
            )
        )
        combinations = [[stored], *([stored, section] for section in sections)]
    for levels in combinations:
        merged = merge_policies({"thresholds": dict(defaults)}, *levels)
        try:
            check_bands(merged.get("thresholds", {}), merged.get("reject_thresholds", {}))
        except ValueError as exc:
            raise InvalidInput(str(exc), field="reject_thresholds") from exc


def _changed(
    session: Session,
    site: Site,
    actor: str,
    event: str,
    scope: str,
    key: str | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    session.execute(
        update(Site)
        .where(Site.id == site.id)
        .values(policy_version=Site.policy_version + 1)
        .execution_options(synchronize_session=False)
    )
    data = {"scope": scope, "key": key, "from": dict(before), "to": dict(after)}
    audit_site(session, site.id, actor, event, data)
    session.flush()


@dataclass
class SitePolicies:
    """A site's bodies, as of `version`, and the policies resolved from them. Its sections
    are read whole (a site has a few dozen); its articles one by one as comments name them
    (a site may close thousands, and a change must not make every process reread them all)."""

    version: int
    site_id: int
    site: dict[str, Any]
    sections: dict[str, dict[str, Any]]
    articles: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _resolved: dict[tuple[Any, ...], Policy] = field(default_factory=dict)

    def _article(self, session: Session | None, article_id: str | None) -> dict[str, Any] | None:
        if article_id is None:
            return None
        if article_id not in self.articles and session is not None:
            if len(self.articles) >= ARTICLE_CACHE:
                self.articles.clear()
            self.articles[article_id] = session.scalar(
                select(PolicyOverride.policy).where(
                    PolicyOverride.site_id == self.site_id,
                    PolicyOverride.scope == "article",
                    PolicyOverride.key == article_id,
                )
            )
        return self.articles.get(article_id)

    def levels(
        self, section: str | None, article_id: str | None, session: Session | None = None
    ) -> list[dict[str, Any]]:
        levels = [self.site]
        if section is not None and section in self.sections:
            levels.append(self.sections[section])
        article = self._article(session, article_id)
        if article is not None:
            levels.append(article)
        return levels

    def resolve(
        self,
        session: Session,
        defaults: Mapping[str, float],
        section: str | None,
        article_id: str | None,
        *,
        unsupported_language: LanguageAction = "hold",
    ) -> Policy:
        # Only articles and sections with bodies of their own differ from the site's.
        own = (
            section if section in self.sections else None,
            article_id if self._article(session, article_id) is not None else None,
        )
        cache_key = (*own, unsupported_language, tuple(defaults.items()))
        known = self._resolved.get(cache_key)
        if known is None:
            if len(self._resolved) >= RESOLVED_CACHE:
                self._resolved.clear()
            known = resolve_policy(
                defaults, *self.levels(*own), unsupported_language=unsupported_language
            )
            self._resolved[cache_key] = known
        return known


# Each site's policies as this process last read them.
_KEPT: PerDatabase[int, SitePolicies] = PerDatabase()


def current_policies(session: Session, site_id: int, version: int) -> SitePolicies:
    """The site's policies at `version` (its Site.policy_version), read once per change."""
    kept = _KEPT.of(session)
    known = kept.get(site_id)
    if known is None or known.version != version:
        known = kept[site_id] = site_policies(session, site_id)
    return known


def site_policies(session: Session, site_id: int) -> SitePolicies:
    site = session.execute(select(Site.policy, Site.policy_version).where(Site.id == site_id)).one()
    sections = {
        row.key: row.policy
        for row in session.execute(
            select(PolicyOverride.key, PolicyOverride.policy).where(
                PolicyOverride.site_id == site_id, PolicyOverride.scope == "section"
            )
        )
    }
    return SitePolicies(site.policy_version, site_id, site.policy or {}, sections)


def effective_view(
    session: Session,
    site_name: str,
    article_id: str,
    *,
    section: str | None,
    defaults: Mapping[str, float],
    unsupported_language: LanguageAction,
) -> dict[str, Any]:
    """The policy an article's next comment meets. Its section: as given, else that of the
    article's latest comment."""
    site = site_named(session, site_name)
    if section is None:
        section = session.scalar(
            select(Comment.section)
            .where(Comment.site_id == site.id, Comment.article_id == article_id)
            .order_by(Comment.created_at.desc())
            .limit(1)
        )
    policies = site_policies(session, site.id)
    levels = policies.levels(section, article_id, session)
    merged = merge_policies({"thresholds": dict(defaults)}, *levels)
    resolved = policies.resolve(
        session, defaults, section, article_id, unsupported_language=unsupported_language
    )
    merged["unsupported_language"] = resolved.unsupported_language
    merged["trusted_threshold"] = resolved.trusted_threshold
    return {
        "site": site.name,
        "scope": "article",
        "article_id": article_id,
        "section": section,
        "effective": True,
        "from": [name for name, on in _sources(policies, section, article_id) if on],
        "policy": merged,
    }


def _sources(
    policies: SitePolicies, section: str | None, article_id: str | None
) -> list[tuple[str, bool]]:
    return [
        ("defaults", True),
        ("site", bool(policies.site)),
        ("section", section is not None and section in policies.sections),
        ("article", article_id is not None and policies.articles.get(article_id) is not None),
    ]
