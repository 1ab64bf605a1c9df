"""`ponder planner`: an SLO planner that sizes the prefill and decode worker pools from the
workers' metrics and this engine's profile, and scales through the router's worker registry."""
