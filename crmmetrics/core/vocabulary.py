"""The words of Payne & Frow's strategic framework for CRM, in one place.

Every other module, the CLI, the Prometheus labels and the dashboards use these values, so that
"value_creation" or "learning_growth" means the same thing everywhere.
"""

from __future__ import annotations

from enum import StrEnum


class Process(StrEnum):
    """The five cross-functional CRM processes (Payne & Frow 2005)."""

    STRATEGY_DEVELOPMENT = "strategy_development"
    VALUE_CREATION = "value_creation"
    MULTICHANNEL_INTEGRATION = "multichannel_integration"
    INFORMATION_MANAGEMENT = "information_management"
    PERFORMANCE_ASSESSMENT = "performance_assessment"

    @property
    def title(self) -> str:
        return PROCESS_TITLES[self]


PROCESS_TITLES = {
    Process.STRATEGY_DEVELOPMENT: "Strategy development",
    Process.VALUE_CREATION: "Value creation",
    Process.MULTICHANNEL_INTEGRATION: "Multichannel integration",
    Process.INFORMATION_MANAGEMENT: "Information management",
    Process.PERFORMANCE_ASSESSMENT: "Performance assessment",
}


class Perspective(StrEnum):
    """The four balanced-scorecard perspectives (Kaplan & Norton 1992)."""

    FINANCIAL = "financial"
    CUSTOMER = "customer"
    INTERNAL_PROCESS = "internal_process"
    LEARNING_GROWTH = "learning_growth"

    @property
    def title(self) -> str:
        return PERSPECTIVE_TITLES[self]


PERSPECTIVE_TITLES = {
    Perspective.FINANCIAL: "Financial",
    Perspective.CUSTOMER: "Customer",
    Perspective.INTERNAL_PROCESS: "Internal process",
    Perspective.LEARNING_GROWTH: "Learning & growth",
}


class ValueLens(StrEnum):
    """Payne & Frow's shareholder results: whose value a KPI speaks for.

    They map onto the scorecard: employee value -> learning & growth, customer value ->
    customer, shareholder value and cost reduction -> financial (cost reduction also internal
    process).
    """

    EMPLOYEE_VALUE = "employee_value"
    CUSTOMER_VALUE = "customer_value"
    SHAREHOLDER_VALUE = "shareholder_value"
    COST_REDUCTION = "cost_reduction"


class ChannelCategory(StrEnum):
    """The six channel categories, from physical to virtual."""

    SALES_FORCE = "sales_force"
    OUTLETS = "outlets"
    TELEPHONY = "telephony"
    DIRECT_MARKETING = "direct_marketing"
    E_COMMERCE = "e_commerce"
    M_COMMERCE = "m_commerce"


class Direction(StrEnum):
    """Which way is better for a metric; standards and scores depend on it."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


# The words crmmetrics itself uses for its runs, periods and KPIs. Their values are what the
# store holds, what JSON and logs say and what the Prometheus labels carry: a StrEnum member
# compares equal to, and formats as, its text.


class RunStatus(StrEnum):
    """Where a run of a metric is: running, then success or failed (a time-out is a failure
    whose error says so); interrupted if its process died while it ran."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class PeriodLabel(StrEnum):
    """Which of the two reporting periods every metric is computed for."""

    CURRENT = "current"
    PREVIOUS = "previous"


class KpiStatus(StrEnum):
    """A KPI's status under its standard. A KPI without a current value has no status (None,
    never a colour); ``NO_DATA`` is only the label under which such KPIs are counted."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NO_DATA = "no_data"
