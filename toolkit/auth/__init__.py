"""Staff users, roles, sessions and API tokens."""
