"""Intercom: notification webhooks, which carry only the newest part (crm-formats §5)."""
