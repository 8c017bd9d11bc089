"""Request dependencies as `Annotated` aliases, so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from service.core.errors import AuthError, Forbidden
from service.core.tables import Role
from service.http.caller import Caller
from service.http.state import AppState, state_of
from service.http.units import in_session
from service.sites.keys import authenticate, hash_key
from service.sites.sites import get_site

__all__ = [
    "AdminKey",
    "Anonymous",
    "AnyKey",
    "Caller",
    "ModeratorKey",
    "OperatorKey",
    "SiteId",
    "State",
    "SubmitterKey",
    "bearer",
    "caller_of",
    "require_site",
]


State = Annotated[AppState, Depends(state_of)]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _authenticated(state: AppState, plain: str | None, digest: str | None) -> Caller:
    """The key's caller, from this process's cache while it can be trusted, else the
    database; AuthError for a missing, unknown or revoked key."""
    cached = state.keys.get(digest) if digest else None
    if cached is not None:
        return cached
    generation = state.keys.generation

    def lookup(session: Session) -> tuple[Caller, datetime | None]:
        key = authenticate(session, plain)
        return Caller.of(key), key.revoked_at

    caller, revoked_at = await in_session(state, lookup)
    if digest:
        state.keys.put(digest, caller, revoked_at=revoked_at, generation=generation)
    return caller


async def caller_of(
    state: AppState,
    plain: str | None,
    *,
    roles: Sequence[str],
    address: str | None,
    field: str = "Authorization",
) -> Caller:
    """The key's caller, if the key is valid, within its quota and its role one of `roles`;
    else AuthError, RateLimited or Forbidden (naming `field`, where the key came from). A
    failed authentication counts against the client's `address`."""
    quotas = state.quotas
    digest = hash_key(plain) if plain else None  # once: the key cache and the vouching share it
    if address is not None and not quotas.vouched(digest):
        await quotas.check_address(address)

    try:
        caller = await _authenticated(state, plain, digest)
    except AuthError as exc:  # name where this caller put the key (a header, or ?key=)
        if address is not None:
            prefix = (plain or "")[:10]
            await quotas.count_failure(address, key_prefix=prefix, reason=exc.detail)
        raise AuthError(exc.detail, field=field) from None
    if digest:
        quotas.vouch(digest)
    await quotas.charge_key(
        caller.key_id, per_second=caller.quota_per_second, burst=caller.quota_burst
    )
    if caller.role not in roles:
        raise Forbidden(
            f"a {caller.role} key may not do this; it needs one of: {', '.join(roles)}",
            field=field,
        )
    return caller


async def _anonymous(request: Request, state: State) -> None:
    if request.client is not None:
        await state.quotas.charge_address(request.client.host)


# For routes anyone may call without a key: each costs a request of the client address's quota.
Anonymous = Depends(_anonymous)


def _caller_with(*roles: str) -> Callable[..., object]:
    async def dependency(
        request: Request, state: State, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        address = request.client.host if request.client else None
        return await caller_of(state, bearer(authorization), roles=roles, address=address)

    return dependency


# Keys belong to one site. Submitter and moderator keys act on their own site only, and so
# does a site admin's, which alone manages that site's keys, policy, webhook and integrations.
# An operator key runs the deployment (sites, shared models, quotas) and may act on any site.
SubmitterKey = Annotated[Caller, Depends(_caller_with(Role.SUBMITTER, *Role.ADMINS))]
ModeratorKey = Annotated[Caller, Depends(_caller_with(Role.MODERATOR, *Role.ADMINS))]
AdminKey = Annotated[Caller, Depends(_caller_with(*Role.ADMINS))]
OperatorKey = Annotated[Caller, Depends(_caller_with(Role.OPERATOR))]
AnyKey = Annotated[Caller, Depends(_caller_with(*Role.ALL))]


def require_site(caller: Caller, site_name: str, *, field: str = "site") -> None:
    """Forbidden unless the caller may act on `site_name`: its own site, or any for an
    operator."""
    if caller.role != Role.OPERATOR and site_name != caller.site_name:
        raise Forbidden(f"a {caller.role} key acts on its own site only", field=field)


# Moderation routes work on the caller's site; an operator key may name another with ?site=.
async def _site_id(
    caller: ModeratorKey,
    state: State,
    site: Annotated[
        str | None, Query(description="Operator keys only: act on this site instead of their own.")
    ] = None,
) -> int:
    if site is None or site == caller.site_name:
        return caller.site_id
    require_site(caller, site)
    return await in_session(state, lambda session: get_site(session, site).id)


SiteId = Annotated[int, Depends(_site_id)]
