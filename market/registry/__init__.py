"""The registry: organisations, users, roles and API tokens, and the ``Principal`` a token
authenticates as. Tokens are stored as SHA-256 hashes only. Also the registries (五库) of
issue #11: regions (the 行政区划 tree), purchasing units, agencies and suppliers with their
persons (ID numbers as hashes only); the pure rules are in ``market.registry.rules``.

Must not import: web.
"""

from __future__ import annotations

from market.registry.models import (
    ApiTokenRow,
    OrganisationPersonRow,
    OrganisationRow,
    OrgKind,
    RegionRow,
    Role,
    SizeClass,
    UserRow,
)
from market.registry.service import (
    ROLE_ORG_KINDS,
    TOKEN_PREFIX,
    OrganisationDetail,
    PersonInput,
    Principal,
    RegionDetail,
    Registry,
    hash_token,
    new_id,
    normalise_credit_code,
    shipped_regions_text,
)

__all__ = [
    "ROLE_ORG_KINDS",
    "TOKEN_PREFIX",
    "ApiTokenRow",
    "OrgKind",
    "OrganisationDetail",
    "OrganisationPersonRow",
    "OrganisationRow",
    "PersonInput",
    "Principal",
    "RegionDetail",
    "RegionRow",
    "Registry",
    "Role",
    "SizeClass",
    "UserRow",
    "hash_token",
    "new_id",
    "normalise_credit_code",
    "shipped_regions_text",
]
