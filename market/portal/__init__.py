"""The public portal (政府采购网): announcements by region, method, category and kind, full-text
search in Chinese, each announcement with its statutory dates. ``rules`` is the query and its
order (pure), ``store`` the SQL per dialect, ``service`` the use cases."""

from market.portal.service import PortalService

__all__ = ["PortalService"]
