"""Who is calling: an authenticated key, as every route and the key cache see it."""

from __future__ import annotations

from dataclasses import dataclass

from service.core.tables import ApiKey

__all__ = ["Caller"]


@dataclass(frozen=True)
class Caller:
    """The authenticated key, detached from any session."""

    key_id: int
    site_id: int
    site_name: str
    role: str
    key_prefix: str = ""
    key_name: str = ""
    # The site's own quota for its keys, where an operator set one.
    quota_per_second: float | None = None
    quota_burst: int | None = None

    @property
    def actor(self) -> str:
        """Who did it, for reviews and the audit trail: the key's name and prefix."""
        label = f"{self.role} key {self.key_prefix}"
        return f"{self.key_name} ({label})" if self.key_name else label

    @classmethod
    def of(cls, key: ApiKey) -> Caller:
        """The caller of an authenticated key (its site loaded with it)."""
        site = key.site
        return cls(
            key.id,
            key.site_id,
            site.name,
            key.role,
            key.prefix,
            key.name,
            quota_per_second=site.key_requests_per_second,
            quota_burst=site.key_burst,
        )
