"""Standards: what good looks like for a metric (target, red/green thresholds, weight, owner).

A metric with a standard is a KPI and has a place on the scorecard. Plugins ship defaults
through the ``crmmetrics_standards`` hook (``StandardDefault``); the admin overrides them in the
standards file (``config/standards.toml``, imported into the store) or through the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .vocabulary import Direction

# How a standard's target is set: a fixed number, derived from the metric's previous-period
# value (``improvement`` better, e.g. 0.05 = 5% better), or a published benchmark the plugin
# ships (``benchmark`` with its ``source``).
TARGET_RULES = ("fixed", "previous", "benchmark")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def threshold_direction(red: float, green: float) -> Direction:
    """The direction a pair of thresholds implies: green above red means higher is better."""
    return Direction.HIGHER_IS_BETTER if green > red else Direction.LOWER_IS_BETTER


def better_or_equal(a: float, b: float, direction: Direction) -> bool:
    """Is ``a`` at least as good as ``b`` for this direction?"""
    return a >= b if direction == Direction.HIGHER_IS_BETTER else a <= b


@dataclass(frozen=True)
class StandardDefault:
    """A plugin's default standard for one metric (optionally one dimension value).

    ``target`` is the fixed target, or None when the target is derived:
    ``target_rule="previous"`` sets it ``improvement`` better than the previous period's
    value (0.05 = 5% better; for a lower-is-better metric that is 5% lower);
    ``target_rule="benchmark"`` sets it to ``benchmark`` (cite it in ``source``).
    ``red`` and ``green`` are the thresholds: a value at or beyond ``green`` is green, at or
    beyond ``red`` is red, amber in between. Their order gives the direction (green above red:
    higher is better) and must agree with the metric's direction; both lie at or before the
    target (a target is never easier than green).
    ``dimensions`` narrows the standard to one dimension value, e.g. ``{"segment": "Premium"}``.
    """

    metric: str
    target: float | None
    red: float
    green: float
    weight: float = 1.0
    owner: str = ""
    dimensions: Mapping[str, str] = field(default_factory=dict)
    target_rule: str = "fixed"
    improvement: float = 0.0
    benchmark: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", dict(self.dimensions))
        object.__setattr__(self, "red", _number("red", self.red))
        object.__setattr__(self, "green", _number("green", self.green))
        object.__setattr__(self, "weight", _number("weight", self.weight))
        object.__setattr__(self, "improvement", _number("improvement", self.improvement))
        if self.target is not None:
            object.__setattr__(self, "target", _number("target", self.target))
        if self.benchmark is not None:
            object.__setattr__(self, "benchmark", _number("benchmark", self.benchmark))
        problem = self.problem()
        if problem:
            raise ValueError(f"standard for {self.label}: {problem}")

    @property
    def label(self) -> str:
        """The metric key, with the dimension value if the standard is narrowed to one."""
        if not self.dimensions:
            return self.metric
        return self.metric + "{" + ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items())) + "}"

    @property
    def direction(self) -> Direction:
        return threshold_direction(self.red, self.green)

    def problem(self, direction: Direction | str | None = None) -> str | None:
        """What is wrong with this standard (for a metric of ``direction``, if given), or None."""
        if self.red == self.green:
            return f"red and green thresholds are both {self.red:g}; they must differ"
        if self.weight < 0:
            return f"weight must be 0 or more, got {self.weight:g}"
        if direction is not None and Direction(direction) != self.direction:
            wanted = "below" if Direction(direction) == Direction.HIGHER_IS_BETTER else "above"
            return (
                f"red {self.red:g} must be {wanted} green {self.green:g} "
                f"for a metric that is {Direction(direction).value.replace('_', ' ')}"
            )
        if self.target_rule not in TARGET_RULES:
            return f"target_rule must be one of {', '.join(TARGET_RULES)}, got {self.target_rule!r}"
        if self.target_rule == "fixed" and self.target is None:
            return "a fixed target needs a number (or set target_rule to previous or benchmark)"
        if self.target_rule == "previous":
            if self.target is not None:
                return "a target derived from the previous period takes no fixed target"
            if self.improvement <= -1:
                return f"improvement must be above -1 (a fraction, 0.05 = 5% better), got {self.improvement:g}"
        if self.target_rule == "benchmark":
            if self.benchmark is None:
                return "a benchmark target needs the benchmark number"
            if self.target is not None:
                return "a benchmark target takes no fixed target"
        fixed = self.fixed_target
        if fixed is not None and not better_or_equal(fixed, self.green, self.direction):
            side = "above" if self.direction == Direction.HIGHER_IS_BETTER else "below"
            return f"target {fixed:g} must be at or {side} the green threshold {self.green:g} (red {self.red:g})"
        return None

    @property
    def fixed_target(self) -> float | None:
        """The target when it does not depend on the data (fixed or benchmark), else None."""
        if self.target_rule == "benchmark":
            return self.benchmark
        return self.target if self.target_rule == "fixed" else None

    def target_for(self, previous: float | None) -> float | None:
        """The target in force, given the metric's previous-period value (None: no target)."""
        if self.target_rule != "previous":
            return self.fixed_target
        if previous is None:
            return None
        step = abs(previous) * self.improvement
        return previous + step if self.direction == Direction.HIGHER_IS_BETTER else previous - step
