"""The model registry: immutable versions stored in the database, and the movable "active" alias.

Every version keeps its artifact as a zip in the database with the archive's sha256 and the
artifact's own sha256 (classifier manifest), so any worker on any machine can fetch and verify
it. Promotion and rollback only move the alias; each move is a ModelEvent with who and why,
and rollback moves it back to where the last move took it from. A retired version can never
become active again.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from classifier.artifact import artifact_identity
from service.core.errors import ArtifactCorrupt, Conflict, ModelNotFound
from service.core.tables import ModelAlias, ModelEvent, ModelVersion, utcnow

__all__ = [
    "ACTIVE",
    "FetchedArtifact",
    "VersionStatus",
    "active_version",
    "ensure_registered",
    "fetch_artifact",
    "model_events",
    "pack_artifact",
    "promote",
    "register_version",
    "retire",
    "rollback",
    "set_shadow",
    "shadow_version",
    "trained_for",
    "version_view",
    "version_view_for_site",
]

ACTIVE = "active"


class VersionStatus:
    CANDIDATE = "candidate"  # registered, never active
    ACTIVE = "active"
    ARCHIVED = "archived"  # was active; may be promoted again (rollback target)
    RETIRED = "retired"  # taken out of use for good


def pack_artifact(directory: Path) -> bytes:
    """The artifact folder as a zip; the same files give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            info = zipfile.ZipInfo(path.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def version_view(row: ModelVersion, *, active: str | None = None) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "active": row.version == active,
        "shadow": row.shadow,
        "parent": row.parent,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "metrics": row.metrics,
        "bias": row.bias,
        "data": row.data,
        "params": row.params,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def trained_for(row: ModelVersion) -> str | None:
    """The site whose labels the version was trained on; None for one of base data alone."""
    site = (row.data or {}).get("site")
    return site.get("name") if isinstance(site, dict) else None


_IDENTITY = ("version", "status", "active", "shadow", "parent", "sha256", "size_bytes")


def version_view_for_site(
    row: ModelVersion, *, active: str | None, site_name: str
) -> dict[str, Any]:
    """What a key of one site may see of a version. Every site needs to know which version
    decides; only the version's own site may see what another site's labels made of it
    (names, label counts, holdout scores), and no site sees the server's file paths."""
    view = version_view(row, active=active)
    if trained_for(row) not in (None, site_name):
        hidden: dict[str, Any] = {"metrics": {}, "bias": {}, "data": {}, "params": {}}
        return {k: view[k] for k in _IDENTITY} | hidden | {"created_by": "", "created_at": None}
    data = dict(view["data"] or {})
    if isinstance(data.get("base"), dict):
        data["base"] = {k: v for k, v in data["base"].items() if k != "dir"}
    return view | {"data": data}


def register_version(
    session: Session,
    directory: Path,
    *,
    created_by: str,
    parent: str | None = None,
    metrics: dict[str, Any] | None = None,
    bias: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> ModelVersion:
    """Store an artifact folder as a new candidate; a version already stored is returned as is."""
    version, sha256 = artifact_identity(directory)
    existing = session.get(ModelVersion, version)
    if existing is not None:
        return existing
    archive = pack_artifact(directory)
    row = ModelVersion(
        version=version,
        sha256=sha256,
        archive=archive,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        size_bytes=len(archive),
        status=VersionStatus.CANDIDATE,
        parent=parent,
        metrics=metrics or {},
        bias=bias or {},
        data=data or {},
        params=params or {},
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(row)
    session.add(ModelEvent(action="register", to_version=version, actor=created_by, reason=""))
    session.flush()
    return row


def active_version(session: Session) -> str | None:
    return session.scalar(select(ModelAlias.version).where(ModelAlias.alias == ACTIVE))


def shadow_version(session: Session) -> str | None:
    return session.scalar(select(ModelVersion.version).where(ModelVersion.shadow.is_(True)))


def ensure_registered(session: Session, directory: Path, *, actor: str = "bootstrap") -> str:
    """Register the shipped (or configured) model and make it active if nothing is yet."""
    current = active_version(session)
    if current is not None:
        return current
    row = register_version(session, directory, created_by=actor)
    _move(session, row, actor=actor, reason="first model of this deployment", action="bootstrap")
    return row.version


def _get(session: Session, version: str) -> ModelVersion:
    row = session.get(ModelVersion, version)
    if row is None:
        raise ModelNotFound(f"no model version {version!r}", field="version")
    return row


def _move(
    session: Session, row: ModelVersion, *, actor: str, reason: str, action: str
) -> str | None:
    alias = session.get(ModelAlias, ACTIVE, with_for_update=True)
    previous = alias.version if alias else None
    if alias is None:
        session.add(ModelAlias(alias=ACTIVE, version=row.version, updated_at=utcnow()))
    else:
        alias.version = row.version
        alias.updated_at = utcnow()
    if previous and previous != row.version:
        session.get_one(ModelVersion, previous).status = VersionStatus.ARCHIVED
    row.status = VersionStatus.ACTIVE
    row.shadow = False
    session.add(
        ModelEvent(
            action=action, from_version=previous, to_version=row.version, actor=actor, reason=reason
        )
    )
    session.flush()
    return previous


def promote(
    session: Session, version: str, *, actor: str, reason: str = "", action: str = "promote"
) -> dict[str, Any]:
    """Make `version` the active model; refused for an unknown or retired version."""
    row = _get(session, version)
    if row.status == VersionStatus.RETIRED:
        raise Conflict(
            f"model version {version!r} is retired and cannot be promoted", field="version"
        )
    if row.status == VersionStatus.ACTIVE:
        raise Conflict(f"model version {version!r} is already active", field="version")
    previous = _move(session, row, actor=actor, reason=reason, action=action)
    return {"active": row.version, "previous": previous}


def rollback(session: Session, *, actor: str, reason: str = "") -> dict[str, Any]:
    """Point the alias back at the version the last move took it from."""
    last = session.scalar(
        select(ModelEvent)
        .where(ModelEvent.action.in_(("promote", "auto_promote", "rollback")))
        .order_by(ModelEvent.id.desc())
        .limit(1)
    )
    if last is None or last.from_version is None:
        raise Conflict("there is no earlier active model to roll back to", field="version")
    target = _get(session, last.from_version)
    if target.status == VersionStatus.RETIRED:
        raise Conflict(f"the previous model {target.version!r} is retired", field="version")
    previous = _move(session, target, actor=actor, reason=reason, action="rollback")
    return {"active": target.version, "previous": previous}


def retire(session: Session, version: str, *, actor: str, reason: str = "") -> dict[str, Any]:
    row = _get(session, version)
    if row.status == VersionStatus.ACTIVE:
        raise Conflict("the active model cannot be retired; promote another first", field="version")
    row.status = VersionStatus.RETIRED
    row.shadow = False
    session.add(ModelEvent(action="retire", from_version=version, actor=actor, reason=reason))
    session.flush()
    return version_view(row, active=active_version(session))


def set_shadow(session: Session, version: str | None, *, actor: str) -> str | None:
    """Put `version` in shadow (None: stop shadowing); one shadow at a time."""
    for row in session.scalars(select(ModelVersion).where(ModelVersion.shadow.is_(True))):
        row.shadow = False
    if version is not None:
        row = _get(session, version)
        if row.status in (VersionStatus.RETIRED, VersionStatus.ACTIVE):
            raise Conflict(
                f"model version {version!r} is {row.status}; it cannot shadow", field="version"
            )
        row.shadow = True
    session.add(ModelEvent(action="shadow", to_version=version, actor=actor, reason=""))
    session.flush()
    return version


def model_events(
    session: Session, *, limit: int = 100, site_name: str | None = None
) -> list[dict[str, Any]]:
    """The alias's moves, newest first. For `site_name` (a key of one site), the reason of a
    move to a version trained on another site's labels is withheld: it names that site."""
    events = list(session.scalars(select(ModelEvent).order_by(ModelEvent.id.desc()).limit(limit)))
    foreign: set[str] = set()
    if site_name is not None:
        versions = {e.to_version for e in events} | {e.from_version for e in events}
        rows = session.scalars(
            select(ModelVersion)
            .options(defer(ModelVersion.archive))
            .where(ModelVersion.version.in_([v for v in versions if v]))
        )
        foreign = {r.version for r in rows if trained_for(r) not in (None, site_name)}
    return [
        {
            "action": e.action,
            "from": e.from_version,
            "to": e.to_version,
            "actor": e.actor,
            "reason": "" if e.to_version in foreign else e.reason,
            "at": e.created_at,
        }
        for e in events
    ]


@dataclass(frozen=True)
class FetchedArtifact:
    version: str
    sha256: str
    directory: Path


def fetch_artifact(session: Session, version: str, cache_dir: Path) -> FetchedArtifact:
    """The version's artifact folder under `cache_dir`, unpacked once and verified.

    The archive is checked against its sha256 before unpacking; the caller loads the folder
    with `expected_sha256`, so a corrupt or swapped artifact is refused, never served.
    """
    row = session.execute(
        select(ModelVersion.archive, ModelVersion.archive_sha256, ModelVersion.sha256).where(
            ModelVersion.version == version
        )
    ).first()
    if row is None:
        raise ModelNotFound(f"no model version {version!r}", field="version")
    target = cache_dir / version
    if not target.is_dir():
        if hashlib.sha256(row.archive).hexdigest() != row.archive_sha256:
            raise ArtifactCorrupt(f"model version {version!r}: archive does not match its sha256")
        cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{version}-"))
        try:
            with zipfile.ZipFile(io.BytesIO(row.archive)) as archive:
                for name in archive.namelist():
                    if "/" in name or name.startswith("."):
                        raise ArtifactCorrupt(f"model version {version!r}: bad member {name!r}")
                    (scratch / name).write_bytes(archive.read(name))
            # Several processes may unpack at once: the first rename wins, the rest tidy up.
            try:
                os.rename(scratch, target)
            except OSError:
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return FetchedArtifact(version, row.sha256, target)
