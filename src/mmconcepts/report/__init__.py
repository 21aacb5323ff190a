"""The one-file HTML report of one model and word."""
