"""`ponder eval`: accuracy, tokens and wall time of reasoning strategies on the built-in task suite."""
