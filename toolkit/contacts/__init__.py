"""Contacts: the people a brand talks to, and their channel identities (the LINE userId)."""
