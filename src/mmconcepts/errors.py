"""The one error type the CLI turns into a clean message instead of a traceback."""


class MMConceptsError(ValueError):
    """Bad input or configuration; the message names the file, key or word."""
