"""Route for a model in shadow: how its verdicts compare with the active model and moderators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from service.core.errors import Forbidden
from service.core.tables import Role
from service.http.deps import ModeratorKey, State
from service.http.units import in_session
from service.models.shadow import shadow_report
from service.sites.sites import get_site

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["models"])


@router.get(
    "/models/{version}/shadow",
    summary="A shadow model's agreement with the active model and with moderators",
)
async def get_shadow_report(
    version: str,
    caller: ModeratorKey,
    state: State,
    site: Annotated[
        str | None,
        Query(description="Operator keys: one site's comments (default: every site's)."),
    ] = None,
) -> dict[str, Any]:
    """A moderator key sees its own site's comments; an operator key every site's, or `?site=`."""
    if caller.role != Role.OPERATOR and site not in (None, caller.site_name):
        raise Forbidden("only an operator key may read another site", field="site")

    def read(session: Session) -> dict[str, Any]:
        if caller.role != Role.OPERATOR:
            site_id, site_name = caller.site_id, caller.site_name
        elif site is not None:
            site_id, site_name = get_site(session, site).id, site
        else:
            site_id, site_name = None, None
        return {"site": site_name, **shadow_report(session, version, site_id=site_id)}

    return await in_session(state, read)
