"""The base of every error that means "bad input": stages report it as one clear message."""


class InputError(ValueError):
    """A parameter or file is missing, malformed or mismatched; the message names the fix."""
