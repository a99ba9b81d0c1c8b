"""The base of every error that means "bad input": stages report it as one clear message."""


class InputError(ValueError):
    """A parameter, data file, model file or table that is missing, malformed or mismatched.

    The message names the problem and the fix; stages print it without a traceback.
    """
