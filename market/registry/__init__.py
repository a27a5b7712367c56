"""The registry: organisations, users, roles and API tokens, and the ``Principal`` a token
authenticates as. Tokens are stored as SHA-256 hashes only.

Must not import: web.
"""

from __future__ import annotations

from market.registry.models import (
    ApiTokenRow,
    OrganisationRow,
    OrgKind,
    Role,
    SizeClass,
    UserRow,
)
from market.registry.service import (
    ROLE_ORG_KINDS,
    TOKEN_PREFIX,
    Principal,
    Registry,
    hash_token,
    new_id,
)

__all__ = [
    "ROLE_ORG_KINDS",
    "TOKEN_PREFIX",
    "ApiTokenRow",
    "OrgKind",
    "OrganisationRow",
    "Principal",
    "Registry",
    "Role",
    "SizeClass",
    "UserRow",
    "hash_token",
    "new_id",
]
