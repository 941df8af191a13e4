"""Outbound messages: every message the product sends over LINE is a row here, written in the
transaction that decided it, and sent by one pipeline (see service.py and sender.py)."""
