"""Duration models: what a handler run, a cold start or a downstream call takes.

Plain frozen values, each with its ``mean`` and its plain form (``to_dict``: a bare number
of seconds for :class:`Fixed`, a table naming the ``distribution`` otherwise, as a scenario
or a load file writes it). Reading them from TOML is :func:`sluicegate.sim.schema.
parse_distribution`'s job; drawing from them is :func:`sluicegate.sim.models.sampler`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "Distribution",
    "Empirical",
    "Exponential",
    "Fixed",
    "LogNormal",
    "Normal",
    "Uniform",
]

_Z99 = 2.3263478740408408
"""The standard normal quantile at 0.99, which turns a median and p99 into a lognormal's
sigma: ``sigma = ln(p99 / median) / z``."""




@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``value`` seconds."""

    value: float

    @property
    def mean(self) -> float:
        """The expected value in seconds."""
        return self.value

    def to_dict(self) -> float | dict[str, Any]:
        """A bare number of seconds."""
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform between ``min`` and ``max`` seconds."""

    min: float
    max: float

    @property
    def mean(self) -> float:
        """The expected value in seconds."""
        return (self.min + self.max) / 2

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "uniform", "min": ..., "max": ...}``."""
        return {"distribution": "uniform", "min": self.min, "max": self.max}


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal with ``mean`` and ``stddev`` seconds; a negative draw counts as 0."""

    mean: float
    stddev: float

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "normal", "mean": ..., "stddev": ...}``."""
        return {"distribution": "normal", "mean": self.mean, "stddev": self.stddev}


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal given its median and 99th percentile, in seconds.

    ``mu = ln(median)``, ``sigma = ln(p99 / median) / 2.3263`` (the standard normal's 0.99
    quantile), so that half the draws fall below ``median`` and 1% above ``p99``.
    """

    median: float
    p99: float

    @property
    def mu(self) -> float:
        """The underlying normal's mean."""
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        """The underlying normal's standard deviation."""
        return math.log(self.p99 / self.median) / _Z99

    @property
    def mean(self) -> float:
        """The expected value in seconds: ``exp(mu + sigma^2 / 2)``."""
        return math.exp(self.mu + self.sigma**2 / 2)

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "lognormal", "median": ..., "p99": ...}``."""
        return {"distribution": "lognormal", "median": self.median, "p99": self.p99}


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with ``mean`` seconds."""

    mean: float

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "exponential", "mean": ...}``."""
        return {"distribution": "exponential", "mean": self.mean}


@dataclass(frozen=True, slots=True)
class Empirical:
    """Draws uniformly among recorded ``samples`` (seconds), e.g. durations from logs.

    Attributes:
        samples: the values, in seconds, in the order read.
        file: the file they were read from, as written in the scenario (``None`` when
            given inline).
    """

    samples: tuple[float, ...]
    file: str | None = None

    @property
    def mean(self) -> float:
        """The samples' mean in seconds."""
        return sum(self.samples) / len(self.samples)

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "empirical", "samples": [...]}`` (and ``file``: where they
        came from, for the record; ``samples`` is what a reload uses)."""
        out: dict[str, Any] = {"distribution": "empirical", "samples": list(self.samples)}
        if self.file is not None:
            out["file"] = self.file
        return out


Distribution: TypeAlias = Fixed | Uniform | Normal | LogNormal | Exponential | Empirical
"""A duration model: what a handler run, a cold start or a downstream call takes."""

