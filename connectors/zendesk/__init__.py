"""Zendesk Support: event-subscription webhooks (crm-formats §2)."""
