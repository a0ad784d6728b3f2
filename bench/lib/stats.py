"""Medians, ranges, percentiles and ratios."""

import math
import statistics


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a list of numbers."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(math.ceil(p / 100.0 * len(s))) - 1))
    return s[k]


def summary(samples):
    vals = [v for v in samples if isinstance(v, (int, float)) and not math.isnan(v)]
    if not vals:
        return {"median": None, "min": None, "max": None, "samples": samples}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "samples": [round(v, 6) for v in vals]}


def ratio(a, b):
    """a / b; None when it means nothing (missing, zero or negative values,
    such as a memory growth that was a shrink)."""
    if a is None or b is None or b <= 0 or a < 0:
        return None
    return a / b
