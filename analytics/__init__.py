"""Outcome analytics of production conversations: per-conversation facts and daily rollups
(`outcomes.py`), segment drift after an adapter switch (`drift.py`) and the dashboard
(`dashboard.py`). The maths of the classification scores lives in eval/.

The public surface below is what other packages may use: the composition root refreshes the
rollups, and the nightly report quotes the drift flags.
"""

from analytics.drift import DriftFlag, tenant_drift
from analytics.outcomes import refresh_tenant

__all__ = ["DriftFlag", "refresh_tenant", "tenant_drift"]
