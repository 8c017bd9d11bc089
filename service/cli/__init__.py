"""The `moderation` command: `up`, keys, migrate, and the model and registry commands."""
