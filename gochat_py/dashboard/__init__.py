"""The live dashboard: the figures it shows (stats.py, latency.py) and its page (static/)."""
