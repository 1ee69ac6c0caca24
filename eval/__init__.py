"""Evaluation metrics and reports; imports nothing of ours but core (issue 5, 7)."""
