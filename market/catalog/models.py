"""The catalogue table: one row per category of the 政府采购品目分类目录.

``parent_code`` is derived from the code (``rules.category_parent``) and stored so that a
category's children are one indexed query. Must not import: web.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = ["CategoryRow"]


class CategoryRow(Base):
    __tablename__ = "procurement_categories"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String)
    name_en: Mapped[str] = mapped_column(String, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(8))
    parent_code: Mapped[str | None] = mapped_column(String(16), index=True)

    def __repr__(self) -> str:
        return f"CategoryRow(code={self.code!r}, name={self.name!r})"
