"""Who a verified certificate is on the market: the names an organisation's certificates may
carry, and CA login (证书登录) from a verified signing certificate to a supplier user's token.

The certificate checks themselves are the core's (``bidroom.opening.certificates``); this
module adds what only the registry knows: whether the organisation is a registered supplier,
its unified social credit code, and which of its users a login acts as.

Must not import: web.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bidroom.errors import ForbiddenError, UnauthenticatedError
from bidroom.opening.ca import VerifiedIdentity
from bidroom.opening.certificates import organisation_names
from market.registry import OrganisationRow, OrgKind, Registry, Role, UserRow

__all__ = ["CA_TOKEN_TTL_MS", "CaLogin", "certificate_names", "login_supplier"]

#: A CA login's API token lives two hours.
CA_TOKEN_TTL_MS: Final = 2 * 3600 * 1000


async def certificate_names(registry: Registry, org_id: str) -> frozenset[str]:
    """The values (upper case) a certificate's ``OU`` or ``serialNumber`` may carry to name
    the organisation: its id and, if registered with one, its unified social credit code."""
    org = await registry.get_organisation(org_id)
    return organisation_names(org_id, org.credit_code if org is not None else None)


@dataclass(frozen=True, slots=True)
class CaLogin:
    """A CA login's outcome: the token (shown once), its expiry, and whom it acts as."""

    token: str
    expires_at_ms: int
    user: UserRow
    org: OrganisationRow


async def login_supplier(registry: Registry, identity: VerifiedIdentity,
                         now_ms: int) -> CaLogin:
    """The organisation ``identity`` names must be a registered supplier with an active
    supplier user (the first one, in the registry's order); that user gets a token of
    ``CA_TOKEN_TTL_MS`` labelled with the certificate's serial.

    Refusals: ``unknown_organisation`` (401), ``no_supplier_user`` (403)."""
    org = None if identity.org_id is None else await registry.get_organisation(identity.org_id)
    if org is None or org.kind != OrgKind.SUPPLIER.value:
        raise UnauthenticatedError(
            f"the certificate names {identity.name}, which is not a registered supplier",
            code="unknown_organisation")
    users = [u for u in await registry.list_users(org.id)
             if Role.SUPPLIER in u.roles and not u.disabled]
    if not users:
        raise ForbiddenError("the organisation has no active supplier user",
                             code="no_supplier_user")
    user = users[0]
    expires = now_ms + CA_TOKEN_TTL_MS
    token, _ = await registry.issue_token(
        user.id, label=f"ca-login {identity.serial:x}", now_ms=now_ms, expires_at_ms=expires)
    return CaLogin(token, expires, user, org)
