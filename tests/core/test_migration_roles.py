"""Schema 0006: the admin role splits into site_admin and operator; admin keys keep their
reach as operator keys, so no deployment is locked out by the upgrade."""

from __future__ import annotations

from sqlalchemy import text

from service.core.db import make_engine
from service.core.migrate import upgrade_database


def test_admin_keys_become_operator_keys_and_others_keep_their_role(database_url: str) -> None:
    upgrade_database(database_url, "0005")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            site = connection.execute(
                text(
                    "INSERT INTO sites (name, policy, created_at) VALUES ('news', '{}', :now) "
                    "RETURNING id"
                ),
                {"now": "2026-01-01 00:00:00+00:00"},
            ).scalar_one()
            for n, role in enumerate(("admin", "moderator", "submitter")):
                connection.execute(
                    text("INSERT INTO api_keys (site_id, role, prefix, key_hash, name, created_at)"
                         " VALUES (:site, :role, :prefix, :hash, '', :now)"),
                    {"site": site, "role": role, "prefix": f"mk_{n}", "hash": f"h{n}",
                     "now": "2026-01-01 00:00:00+00:00"},
                )  # fmt: skip
        upgrade_database(database_url)
        with engine.connect() as connection:
            roles: dict[str, str] = dict(
                connection.execute(text("SELECT prefix, role FROM api_keys")).all()
            )
            quota = connection.execute(
                text("SELECT key_requests_per_second, key_burst FROM sites")
            ).one()
    finally:
        engine.dispose()
    assert roles == {"mk_0": "operator", "mk_1": "moderator", "mk_2": "submitter"}
    assert tuple(quota) == (None, None), "a site starts on the deployment's quota"
