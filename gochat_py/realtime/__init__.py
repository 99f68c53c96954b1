"""Live delivery: the per-process pub/sub hub and the membership it routes by."""
