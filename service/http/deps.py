"""Request dependencies as `Annotated` aliases, so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from service.core.errors import AuthError, Forbidden
from service.core.tables import Role
from service.http.state import AppState, state_of
from service.http.units import in_session
from service.sites.keys import authenticate
from service.sites.sites import get_site

__all__ = [
    "AdminKey",
    "AnyKey",
    "Caller",
    "ModeratorKey",
    "SiteId",
    "State",
    "SubmitterKey",
    "bearer",
    "caller_of",
]


State = Annotated[AppState, Depends(state_of)]


@dataclass(frozen=True)
class Caller:
    """The authenticated key, detached from any session."""

    key_id: int
    site_id: int
    site_name: str
    role: str
    key_prefix: str = ""
    key_name: str = ""

    @property
    def actor(self) -> str:
        """Who did it, for reviews and the audit trail: the key's name and prefix."""
        label = f"{self.role} key {self.key_prefix}"
        return f"{self.key_name} ({label})" if self.key_name else label


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


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
    if address is not None and not quotas.vouched(plain):
        await quotas.check_address(address)

    def lookup(session: Session) -> Caller:
        key = authenticate(session, plain)
        return Caller(key.id, key.site_id, key.site.name, key.role, key.prefix, key.name)

    try:
        caller = await in_session(state, lookup)
    except AuthError as exc:  # name where this caller put the key (a header, or ?key=)
        if address is not None:
            prefix = (plain or "")[:10]
            await quotas.count_failure(address, key_prefix=prefix, reason=exc.detail)
        raise AuthError(exc.detail, field=field) from None
    quotas.vouch(plain or "")
    await quotas.charge_key(caller.key_id)
    if caller.role not in roles:
        raise Forbidden(
            f"a {caller.role} key may not do this; it needs one of: {', '.join(roles)}",
            field=field,
        )
    return caller


def _caller_with(*roles: str) -> Callable[..., object]:
    async def dependency(
        request: Request, state: State, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        address = request.client.host if request.client else None
        return await caller_of(state, bearer(authorization), roles=roles, address=address)

    return dependency


# Keys belong to one site. Submitter and moderator keys act on their own site only; an admin
# key acts on its own site too, and alone may manage sites, keys, webhooks and policy.
SubmitterKey = Annotated[Caller, Depends(_caller_with(Role.SUBMITTER, Role.ADMIN))]
ModeratorKey = Annotated[Caller, Depends(_caller_with(Role.MODERATOR, Role.ADMIN))]
AdminKey = Annotated[Caller, Depends(_caller_with(Role.ADMIN))]
AnyKey = Annotated[Caller, Depends(_caller_with(*Role.ALL))]


# Moderation routes work on the caller's site; an admin key may name another with ?site=.
async def _site_id(
    caller: ModeratorKey,
    state: State,
    site: Annotated[
        str | None, Query(description="Admin keys only: act on this site instead of their own.")
    ] = None,
) -> int:
    if site is None or site == caller.site_name:
        return caller.site_id
    if caller.role != "admin":
        raise Forbidden("only an admin key may act on another site", field="site")

    return await in_session(state, lambda session: get_site(session, site).id)


SiteId = Annotated[int, Depends(_site_id)]
