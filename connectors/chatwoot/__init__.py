"""Chatwoot: account webhooks (crm-formats §7)."""
