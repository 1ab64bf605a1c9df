"""`ponder profile`: measure this engine's step times and fit the step-time model the simulator uses."""
