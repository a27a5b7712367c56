"""Budget projects (预算项目), procurement plans against them, procurement intentions (采购意向)
and the splitting red flag (Reg 28). ``rules.py`` is pure; ``service.py`` the use cases and the
ledger ``market.projects`` draws on; ``store.py`` the tables.

Must not import: web.
"""
