"""Bidroom's real-time core: reverse-auction rooms and sealed-bid openings.

The core never imports ``market`` or ``web`` (imports run web -> market -> bidroom).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
