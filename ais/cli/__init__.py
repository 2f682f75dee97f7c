"""The `ais` command line."""
