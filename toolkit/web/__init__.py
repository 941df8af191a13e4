"""The admin web UI's shared parts: layout, translations, CSRF, login."""
