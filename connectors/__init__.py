"""CRM connectors: verified webhooks, backfill and file import (issue 4)."""
