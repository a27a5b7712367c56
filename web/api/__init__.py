"""The HTTP API of issue #2: every route, declared once with its OpenAPI spec.

``routes()`` gives the Starlette routes for ``web.app``; ``operations()`` the same routes as
``Operation`` records, from which ``web.openapi`` builds the OpenAPI 3.1 document (and serves
it at ``/openapi.json``, a route of its own, so this registry never imports the document that
lists it). Modules: ``system`` (health, time, platform key, receipts, me), ``registry``
(organisations, users, tokens, regions), ``catalog`` (the procurement category catalogue),
``auctions`` (the auction life cycle) and ``openings`` (sealed-bid openings and CA login,
issue #3).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.api import (
    auctions,
    calendar,
    catalog,
    experts,
    openings,
    plans,
    portal,
    projects,
    registry,
    system,
    tendering,
)
from web.api.common import Operation

__all__ = ["operations", "routes"]


def operations() -> list[Operation]:
    """Every HTTP operation of the API, in documentation order (``/openapi.json`` aside)."""
    return [*system.ops.operations, *registry.ops.operations, *catalog.ops.operations,
            *auctions.ops.operations, *openings.ops.operations, *calendar.ops.operations,
            *projects.ops.operations, *plans.ops.operations, *tendering.ops.operations,
            *portal.ops.operations, *experts.ops.operations]


def routes() -> list[BaseRoute]:
    """One Starlette ``Route`` per (path, method)."""
    return [op.route() for op in operations()]
