"""The expert registry (评审专家库, issue #12 item 1): experts with their specialties, employers,
directorships, declared relations, status and availability, and the facts a panel's conflict
check (回避, EXP 16; Reg 9) reads. ``rules.py`` is pure; ``service.py`` the use cases;
``store.py`` the tables. ID numbers are stored as hashes only
(``market.registry.rules.person_id_hash``).

Must not import: web.
"""
