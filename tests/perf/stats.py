"""Summaries of timing samples: percentiles by nearest rank, and median with spread across runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 for p50, 0.99 for p99) of non-empty samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def distribution(samples: Sequence[float]) -> dict[str, Any]:
    """p50, p99, max and count of one run's samples."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
    }


def across_runs(values: Sequence[float]) -> dict[str, Any]:
    """Median of one figure over several runs, with its spread (min and max) and every run."""
    if not values:
        raise ValueError("no runs")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": list(values),
    }
