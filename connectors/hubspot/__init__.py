"""HubSpot conversations inbox: batched v3 webhooks that carry only ids (crm-formats §4)."""
