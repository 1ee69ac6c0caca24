"""Data functions: keyword-only, one module per aggregate, no HTTP or model code."""
