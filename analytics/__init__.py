"""Outcome analytics of production conversations: per-conversation facts and daily rollups
(`outcomes.py`), segment drift after an adapter switch (`drift.py`) and the dashboard
(`dashboard.py`). The maths of the classification scores lives in eval/.

The public surface below is what other packages may use: the composition root refreshes the
rollups (serve, every SUPPORTLOOP_ANALYTICS_REFRESH_INTERVAL_S; `finetune run`, before it
starts), and the nightly report quotes the drift flags as the rollups stand.
"""

from analytics.drift import DriftFlag, tenant_drift
from analytics.outcomes import refresh_all_tenants, refresh_tenant

__all__ = ["DriftFlag", "refresh_all_tenants", "refresh_tenant", "tenant_drift"]
