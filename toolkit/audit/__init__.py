"""Tamper-evident audit log: a hash chain over every admin action and consent change."""
