"""The `shoal` command: the user's front door. Uses the public API only."""
