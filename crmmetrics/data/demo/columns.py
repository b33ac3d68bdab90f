"""Generated columns as numpy arrays (with NULL masks), the form the generators hand to the
writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

@dataclass
class _Col:
    """One generated column: kind 'i' int, 'f' float, 'b' bool, 's' str, 't' seconds from start."""

    kind: str
    values: Any
    null: np.ndarray | None = None


def _i(values, null=None) -> _Col:
    return _Col("i", np.asarray(values, dtype=np.int64), None if null is None else np.asarray(null))


def _f(values, null=None) -> _Col:
    v = np.asarray(values, dtype=np.float64)
    nn = np.isnan(v)
    if null is not None:
        nn = nn | np.asarray(null)
    return _Col("f", v, nn if nn.any() else None)


def _b(values, null=None) -> _Col:
    return _Col("b", np.asarray(values, dtype=bool), None if null is None else np.asarray(null))


def _s(values, null=None) -> _Col:
    return _Col("s", values, None if null is None else np.asarray(null))


def _t(values, null=None) -> _Col:
    return _Col("t", np.asarray(values, dtype=np.int64), None if null is None else np.asarray(null))


def _money(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64), 2)


def _rows(cols: dict[str, _Col | None]) -> int:
    return next(len(c.values) for c in cols.values() if c is not None)


def _concat(a: _Col, b: _Col) -> _Col:
    """Two parts of a column, one after the other."""
    if a.null is None and b.null is None:
        null = None
    else:
        null = np.concatenate([np.zeros(len(a.values), bool) if a.null is None else a.null,
                               np.zeros(len(b.values), bool) if b.null is None else b.null])
    values = list(a.values) + list(b.values) if a.kind == "s" else np.concatenate([a.values, b.values])
    return _Col(a.kind, values, null)
