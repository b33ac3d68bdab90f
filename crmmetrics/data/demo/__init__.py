"""Deterministic synthetic CRM data for demos, tests and benchmarks.

:func:`generate_demo` fills every canonical table (:mod:`crmmetrics.core.schema`) of a database with
about three years of believable behaviour up to ``as_of``:

* segments of different value (two strategic targets) and nine channels covering the six
  channel categories of Payne & Frow (sales force, outlets, telephony, direct marketing,
  e-commerce, m-commerce), physical/virtual and assisted/self-service;
* customers acquired steadily (growing, with a Christmas peak) through channels and campaigns;
  ~2% duplicate records pointing at their master, a few percent missing or invalid contact
  data, contract customers whose churn follows the shifted-beta-geometric story (Fader & Hardie
  2007) and the rest non-contractual;
* orders from the BG/NBD story (Fader, Hardie & Lee 2005): each customer buys at a Poisson rate
  drawn from a gamma distribution and after each purchase becomes inactive with a probability
  drawn from a beta distribution; spend per order follows the gamma-gamma model and depends on
  the segment.  Same-day multiple orders, ~4% anonymous orders, channel preferences with some
  multichannel customers, campaign attribution, NULL cogs (~10%), returns and order lines in
  several product categories;
* campaigns (acquisition, retention, cross-sell, win-back, brand) whose responses agree with the
  orders attributed to them: a direct-response campaign of the monthly programme starts in every
  month, ad-hoc campaigns at random;
* service cases made of one or more interactions (self-service sometimes followed by an
  assisted contact, channel switching, first-contact resolution), outbound campaign calls and
  visits, employees handling the assisted contacts;
* surveys (NPS 0-10, CSAT 1-5, CES 2.0 1-7, FCR 0/1, share of wallet 0-100) that depend on
  what happened to the customer; the NPS, CSAT, CES and FCR samples keep a minimum number of
  answers a month, so that a small customer base still has a monthly score;
* employees with hires, voluntary and involuntary leavers, monthly pulse surveys (eNPS,
  satisfaction, engagement; some anonymous) asking a third of the staff each month by a fixed
  rota, so that everyone is asked once a quarter;
* a planted **service-profit chain** (Heskett et al. 1994), on unless ``chain_effect=False``:
  every department has a team mood that varies from month to month (an AR(1) series, sd
  :data:`TEAM_MOOD_SD` in units of an employee's mood, autocorrelation
  :data:`TEAM_MOOD_AUTOCORRELATION`). It moves the pulse answers (eNPS, satisfaction,
  engagement) of that department's staff in that month (so ``pa_employee_satisfaction`` by
  ``department`` follows it) and, :data:`CHAIN_LAG_MONTHS` month later, the CSAT of the assisted
  contacts on the channels the department serves (contact centre and live chat: customer
  service; retail stores: retail; field sales team: field sales), by :data:`CSAT_PER_MOOD`
  points of the 1-5 scale per unit of mood: a satisfied team this month, more satisfied
  customers on its channels next month. No link to retention or revenue is planted. The team
  moods come from a generator of their own, so everything else (and, with
  ``chain_effect=False``, every row) is the same either way. A department has few answers a
  month: :mod:`crmmetrics.readers.value_chain` finds the link reliably from about 5,000 customers on
  (the default size);
* a monthly cost ledger (acquisition and retention marketing and sales by channel and campaign,
  service and fulfilment by channel, IT, per segment and a few per customer);
* weekly data-quality checks per source system computed from the generated data.

Every month and quarter of the history thus has data for each built-in KPI (from a few hundred
customers on): both periods a KPI compares, the current and the previous one, have a value
whatever ``as_of``.

Everything derives from the seed: the same ``customers``, ``seed`` and ``as_of`` give identical
data. A demo of up to :data:`BLOCK_CUSTOMERS` customers draws everything from one
``numpy.random.default_rng(seed)``; a larger one is generated and written a block of customers
at a time, each block from a stream of its own spawned from the seed (the shop-wide tables
still from ``default_rng(seed)``), so that memory stays that of one block. Timestamps are naive
UTC and all lie before midnight UTC of ``as_of`` (period ends of the cost ledger are exclusive
and at most ``as_of``).

The modules, one job each: :mod:`.shop` the fictitious company's parameters (segments,
channels, categories, campaigns, departments, cost rates, the planted chain), :mod:`.columns`
the generated columns (numpy arrays with NULL masks), :mod:`.draws` the draws every generator
makes from its own stream, :mod:`.customers` one block of customers and their tables (customers,
orders and lines, interactions, surveys), :mod:`.generator` the whole demo (the shop-wide
tables, the blocks, and the order of the draws), :mod:`.writer` writing into each engine.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from sqlalchemy import create_engine

from ..engines import writable_url
from .generator import BLOCK_CUSTOMERS, _Demo
from .shop import CHAIN_LAG_MONTHS, CSAT_PER_MOOD, HISTORY_DAYS, TEAM_MOOD_AUTOCORRELATION, TEAM_MOOD_SD
from .writer import _check_target, _write

__all__ = ["generate_demo", "BLOCK_CUSTOMERS", "HISTORY_DAYS", "CHAIN_LAG_MONTHS", "CSAT_PER_MOOD", "TEAM_MOOD_SD", "TEAM_MOOD_AUTOCORRELATION"]


def generate_demo(
    url: str,
    *,
    customers: int = 5000,
    seed: int = 42,
    as_of: _dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
    chain_effect: bool = True,
) -> dict[str, int]:
    """Create the canonical tables at ``url`` and fill them with synthetic CRM data.

    ``customers`` is the number of rows of the ``customers`` table (about 2% of them are
    duplicate records of another customer).  The history covers :data:`HISTORY_DAYS` days up to
    midnight UTC of ``as_of`` (default: today, UTC); every timestamp is before it.  ``progress``
    is called with ``(rows written, rows in total)`` while the tables are written (the total
    is extrapolated until the end for a demo of more than :data:`BLOCK_CUSTOMERS` customers,
    which is generated and written a block of customers at a time).
    ``chain_effect``: plant the service-profit chain (team mood -> CSAT a month later; see the
    module docs); False generates the same data without it.

    Refuses (``ValueError``) to write into a database whose canonical tables already hold rows;
    nothing is dropped.  Returns the number of rows written per table.
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 20:
        raise ValueError(f"customers must be an integer >= 20, not {customers!r}")
    if as_of is None:
        as_of = _dt.datetime.now(_dt.timezone.utc).date()
    elif isinstance(as_of, _dt.datetime):
        as_of = as_of.date()
    elif not isinstance(as_of, _dt.date):
        raise ValueError(f"as_of must be a date, not {as_of!r}")
    engine = create_engine(writable_url(url))
    try:
        _check_target(engine)
        demo = _Demo(customers, seed, as_of, chain_effect=chain_effect)
        if len(demo.block_sizes) == 1:  # small enough to build first: the progress total is exact
            return _write(engine, demo.build(), demo.start_epoch, progress)
        return _write(engine, demo.pieces(), demo.start_epoch, progress, expected=demo.rows_expected)
    finally:
        engine.dispose()
