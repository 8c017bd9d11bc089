"""Rotating a site's webhook signing secret: a new one, shown once, for the same checked URL."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import replace

from sqlalchemy.orm import Session

from service.core.errors import InvalidInput
from service.webhooks.config import WebhookConfig, get_webhook, set_webhook

__all__ = ["rotate_webhook_secret"]


def rotate_webhook_secret(
    session: Session,
    site_name: str,
    *,
    actor: str,
    service_origins: Collection[tuple[str, int]],
    api_port: int,
    allowed_networks: Sequence[str] = (),
) -> WebhookConfig:
    """Give the site's webhook a new random secret and return it this once (in `secret`).

    It goes through `set_webhook`, as a PUT of the same URL with a new secret would: the URL is
    checked again (a name may resolve elsewhere since it was set), and the audit entry says
    the secret changed without saying what it is.
    """
    current = get_webhook(session, site_name)
    if current.url is None:
        raise InvalidInput("the site has no webhook URL yet: set one first", field="url")
    secret = secrets.token_urlsafe(32)
    config = set_webhook(
        session,
        site_name,
        url=current.url,
        secret=secret,
        actor=actor,
        service_origins=service_origins,
        api_port=api_port,
        allowed_networks=allowed_networks,
    )
    return replace(config, secret=secret)
