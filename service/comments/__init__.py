"""A comment's path: intake, scoring into a decision, the sweeper, and the decided notification."""
