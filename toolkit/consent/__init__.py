"""Consent and opt-out registry and the gate every send, profile and export asks first."""
