"""Who is calling, and what they may do with an auction.

Every HTTP request carries ``Authorization: Bearer brt_…``; a WebSocket authenticates with the
same header or with an ``auth`` message first (browsers cannot set headers on a WebSocket).

Policy (issue #2): a supplier acts only as itself and only in auctions it was invited to; a
purchaser (or the agency running the auction for it) manages only its own auctions; a
supervisor sees everything, read-only; an admin manages the registry.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from bidroom.errors import ForbiddenError, UnauthenticatedError
from bidroom.rooms.views import Audience
from bidroom.stores.sql import AuctionRow
from market.registry import Principal, Role
from web.services import Services

__all__ = [
    "audience_for",
    "authenticate_token",
    "bearer_token",
    "can_manage",
    "can_view",
    "parse_bearer",
    "require_manage",
    "require_principal",
    "require_role",
    "require_view",
    "services_of",
]


def services_of(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


def bearer_token(conn: HTTPConnection) -> str | None:
    return parse_bearer(conn.headers.get("authorization", ""))


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate_token(services: Services, token: str) -> Principal:
    return await services.registry.authenticate(token, await services.clock.now_ms())


async def require_principal(conn: HTTPConnection) -> Principal:
    token = bearer_token(conn)
    if token is None:
        raise UnauthenticatedError("send 'Authorization: Bearer <token>'", code="missing_token")
    return await authenticate_token(services_of(conn), token)


def require_role(principal: Principal, *roles: Role) -> None:
    if not principal.has_any_role(*roles):
        wanted = ", ".join(r.value for r in roles)
        raise ForbiddenError(f"this needs one of the roles: {wanted}", code="role_required")


def can_manage(principal: Principal, auction: AuctionRow) -> bool:
    if principal.has_role(Role.PURCHASER) and principal.org_id == auction.purchaser_org_id:
        return True
    return principal.has_role(Role.AGENCY) and principal.org_id == auction.agency_org_id


def can_view(principal: Principal, auction: AuctionRow, invited: bool) -> bool:
    if can_manage(principal, auction):
        return True
    if principal.has_any_role(Role.SUPERVISOR, Role.ADMIN):
        return True
    return principal.has_role(Role.SUPPLIER) and invited


def require_manage(principal: Principal, auction: AuctionRow) -> None:
    if not can_manage(principal, auction):
        raise ForbiddenError("only the auction's purchaser or its agency may do this",
                             code="not_your_auction")


def require_view(principal: Principal, auction: AuctionRow, invited: bool) -> None:
    if not can_view(principal, auction, invited):
        raise ForbiddenError("you are not a party to this auction", code="not_invited")


def audience_for(principal: Principal) -> Audience:
    """Suppliers see the supplier view; everyone else who may view sees the watcher view."""
    if principal.has_role(Role.SUPPLIER):
        return Audience.SUPPLIER
    return Audience.WATCHER
