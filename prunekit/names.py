"""The vocabulary every layer shares: the pruning methods and how a k is named.

It imports nothing, so the configuration (params, layout) and the science (pruning, evaluation,
aggregate) can both use it without one depending on the other.
"""

# weight: the k % smallest |w| of each matrix; unit: its k % rows of smallest L2 norm; global:
# the k % smallest |w| of all prunable matrices together (one threshold, the literature's usual
# baseline).
METHODS = ("weight", "unit", "global")


def k_label(k: float) -> str:
    """Names a k (a percent of each prunable matrix) exactly for keys and files: ``k90``."""
    return f"k{int(k)}" if float(k).is_integer() else f"k{float(k)!r}"
