"""Social-ops toolkit: one SQL store and one consent registry for a brand's LINE work."""

__version__ = "0.1.0"
