"""The outcome dashboard: charts of each tenant's outcome metrics over time and by adapter
version, segment drift and the product's classification scores (computed in eval/)."""
