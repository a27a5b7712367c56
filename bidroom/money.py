"""Money is integer fen (分): never float, on the wire, in storage and in the rules.

Must not import: market, web.
"""

from __future__ import annotations

from typing import Any

from bidroom.errors import ValidationError

__all__ = ["MAX_FEN", "format_yuan", "parse_fen"]

# 10^13 fen = 100 billion yuan, far above any single procurement. The bound keeps every
# intermediate product in the Lua executor (whose numbers are IEEE doubles) exact: see
# auction/rules.py ``percent_of``.
MAX_FEN = 10**13


def parse_fen(value: Any, *, field: str = "price_fen", code: str = "invalid_price") -> int:
    """Accept a positive integer amount of fen; refuse floats, bools, strings and negatives."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise ValidationError(
            f"{field} must be a whole number of fen (分), not {kind}", code=code, field=field
        )
    if value <= 0:
        raise ValidationError(f"{field} must be greater than zero", code=code, field=field)
    if value > MAX_FEN:
        raise ValidationError(f"{field} must be at most {MAX_FEN} fen", code=code, field=field)
    return value


def format_yuan(fen: int) -> str:
    """12345 -> '¥123.45' (for logs and printable documents; the UI formats its own)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
