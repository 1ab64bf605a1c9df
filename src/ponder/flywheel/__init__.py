"""The data flywheel: a log of served requests, its curation into training data, and the
comparison of a fine-tuned candidate with the served model (docs/flywheel.md)."""
