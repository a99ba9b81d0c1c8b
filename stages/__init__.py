"""One thin script per DVC stage, run as ``python -m stages.<name>`` from the repository root.

Running them as modules puts the repository root first on ``sys.path``, so a stage always runs
the ``prunekit`` beside it (the checkout DVC hashed), not whichever copy is installed.
"""
