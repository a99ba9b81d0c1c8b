"""The vocabulary every layer shares: the pruning methods and how a k is named.

It imports nothing, so the configuration (params, layout) and the science (pruning, evaluation,
aggregate) can both use it without one depending on the other.
"""

METHODS = ("weight", "unit")


def k_label(k: float) -> str:
    """Names a k (a percent of each prunable matrix) exactly for keys and files: ``k90``."""
    return f"k{int(k)}" if float(k).is_integer() else f"k{float(k)!r}"
