"""Research tool: re-score a recorded `ponder eval --json` run under other vote rules."""
