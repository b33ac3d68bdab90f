"""A standard as a value: what good looks like for a metric, and how the admin writes its key
and target.

``StandardDefault`` is what a plugin ships through the ``crmmetrics_standards`` hook and what
the admin sets (``crmmetrics standards set``, the standards file); ``Standard`` is one in force,
with where it came from. The store keeps every version (``crmmetrics.standards``); this module
holds the rules a standard obeys, which need no store.

Key of a standard
    The metric key, or the metric key with dimension values in Prometheus label style for a
    standard narrowed to them: ``vc_nps`` or ``sd_segment_revenue_share{segment=Premium}``
    (quote values containing commas or braces: ``{segment="A, B"}``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .vocabulary import Direction


# How a standard's target is set: a fixed number, derived from the metric's previous-period
# value (``improvement`` better, e.g. 0.05 = 5% better), or a published benchmark the plugin
# ships (``benchmark`` with its ``source``).
TARGET_RULES = ("fixed", "previous", "benchmark")


def finite_number(name: str, value: object) -> float:
    """``value`` as a finite float; ValueError naming ``name`` for anything else (text too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def threshold_direction(red: float, green: float) -> Direction:
    """The direction a pair of thresholds implies: green above red means higher is better."""
    return Direction.HIGHER_IS_BETTER if green > red else Direction.LOWER_IS_BETTER


def direction_problem(red: float, green: float, direction: Direction | str) -> str | None:
    """What is wrong with thresholds red and green for a metric of ``direction``, or None."""
    direction = Direction(direction)
    if red == green or threshold_direction(red, green) == direction:
        return None
    wanted = "below" if direction == Direction.HIGHER_IS_BETTER else "above"
    return f"red {red:g} must be {wanted} green {green:g} for a metric that is {direction.value.replace('_', ' ')}"


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
        object.__setattr__(self, "red", finite_number("red", self.red))
        object.__setattr__(self, "green", finite_number("green", self.green))
        object.__setattr__(self, "weight", finite_number("weight", self.weight))
        object.__setattr__(self, "improvement", finite_number("improvement", self.improvement))
        if self.target is not None:
            object.__setattr__(self, "target", finite_number("target", self.target))
        if self.benchmark is not None:
            object.__setattr__(self, "benchmark", finite_number("benchmark", self.benchmark))
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
        if direction is not None and (wrong := direction_problem(self.red, self.green, direction)):
            return wrong
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


# --- keys and target text ---------------------------------------------------------------------

_KEY = re.compile(r"^([a-z][a-z0-9_]*)(?:\{(.*)\})?$", re.DOTALL)
_LABEL = re.compile(r'\s*([a-z][a-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,"]*?)\s*(?:,|$)')
_TARGET = re.compile(r"^previous\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*%)?$")


def parse_key(text: str) -> tuple[str, dict[str, str]]:
    """``vc_nps`` -> ("vc_nps", {}); ``x{segment=Premium}`` -> ("x", {"segment": "Premium"})."""
    match = _KEY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a standard key: expected METRIC or METRIC{{dimension=value}}")
    metric, body = match.group(1), match.group(2)
    dimensions: dict[str, str] = {}
    position = 0
    body = (body or "").strip()
    while position < len(body):
        label = _LABEL.match(body, position)
        if not label or label.end() == position:
            raise ValueError(f"{text!r}: cannot read the dimensions {body!r}: expected name=value, ...")
        name, value = label.group(1), label.group(2)
        if value.startswith('"'):
            value = json.loads(value)
        if name in dimensions:
            raise ValueError(f"{text!r}: dimension {name!r} given twice")
        dimensions[name] = value
        position = label.end()
    return metric, dimensions


def format_key(metric: str, dimensions: Mapping[str, str]) -> str:
    """The inverse of ``parse_key``."""
    if not dimensions:
        return metric
    parts = []
    for name, value in sorted(dimensions.items()):
        plain = value and value == value.strip() and not any(c in value for c in ',{}"=\\')
        parts.append(f"{name}={value if plain else json.dumps(value)}")
    return metric + "{" + ",".join(parts) + "}"


def parse_target(value: object) -> dict[str, Any]:
    """A target as written by the admin: a number, ``previous``, ``previous+5%`` or ``benchmark``.

    Returns the StandardDefault fields it sets (target, target_rule, improvement).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "benchmark":
            return {"target": None, "target_rule": "benchmark", "improvement": 0.0}
        match = _TARGET.match(text)
        if match:
            improvement = float(match.group(2) or 0) / 100
            return {"target": None, "target_rule": "previous", "improvement": -improvement if match.group(1) == "-" else improvement}
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"expected a number, 'previous', 'previous+N%' (N% better than the previous period) or 'benchmark', got {value!r}"
            ) from None
    return {"target": finite_number("target", value), "target_rule": "fixed", "improvement": 0.0}


def describe_target(spec: StandardDefault) -> float | str:
    """The target as the admin writes it (the inverse of ``parse_target``)."""
    if spec.target_rule == "previous":
        if spec.improvement == 0:
            return "previous"
        return f"previous{'+' if spec.improvement > 0 else '-'}{abs(spec.improvement) * 100:g}%"
    if spec.target_rule == "benchmark":
        return "benchmark"
    assert spec.target is not None
    return spec.target


def parse_number(name: str, value: object) -> float:
    """A finite number from text or a number; ValueError naming ``name`` otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    return finite_number(name, value)


def check_against(spec: StandardDefault, registry: Any) -> str | None:
    """What is wrong with ``spec`` for the loaded metric definitions, or None."""
    if spec.metric not in registry:
        return f"unknown metric {spec.metric!r} (see 'crmmetrics metrics list')"
    definition = registry.get(spec.metric)
    for name in spec.dimensions:
        if name not in definition.dimensions:
            known = ", ".join(definition.dimensions) or "none"
            return f"metric {spec.metric} has no dimension {name!r} (its dimensions: {known})"
    return spec.problem(definition.direction)


# --- standards in force and wanted ------------------------------------------------------------

# Where a version of a standard comes from: the admin (CLI or standards file) or a plugin's
# crmmetrics_standards default.
ADMIN = "admin"
DEFAULT = "default"


@dataclass(frozen=True)
class Standard:
    """A standard in force: its specification and where it came from."""

    spec: StandardDefault
    origin: str  # ADMIN or DEFAULT
    valid_from: datetime
    changed_by: str
    changed_at: datetime
    via: str
    change_id: int

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def dimensions(self) -> dict[str, str]:
        return dict(self.spec.dimensions)

    @property
    def key(self) -> str:
        return format_key(self.spec.metric, self.spec.dimensions)


@dataclass(frozen=True)
class AdminStandard:
    """A standard the admin asks for (from the CLI or a standards file)."""

    spec: StandardDefault
    valid_from: datetime | None = None  # None: from the moment it is recorded

