"""Freshdesk: automation-rule webhooks (unsigned, shared token) and the REST API (crm-formats §6)."""
