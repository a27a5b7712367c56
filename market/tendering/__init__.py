"""Tender documents, downloads as evidence, registration (报名) and bid bonds (issue #11 item 6).

Must not import: web.
"""
