"""Bid evaluation (评标, O87 §3 of docs DOMAIN): the scheme, evaluated prices, price scores,
the experts' aggregated scores and the ranking, as pure rules (market.evaluation.rules)."""
