"""The canonical extract formats: one place that says what each column is and what it may hold.

The demo generator writes these columns, the loader validates against them, the ODS tables are
created from them, and docs/extracts.md documents them. A source system that names or formats
things differently is adapted by a YAML mapping (see `mapping.py`), never by changing this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Value domains shared by several kinds. Lower-case codes, documented in docs/extracts.md.
REGIONS = ("north", "northeast", "east", "central", "south", "southwest", "northwest")
CUSTOMER_TYPES = ("individual", "business")
CUSTOMER_STATUSES = ("active", "closed")
TXN_TYPES = ("purchase", "refund", "payment", "fee", "transfer", "withdrawal")
CONSUMPTION_TXN_TYPES = ("purchase", "refund")
TXN_CHANNELS = ("branch", "online", "mobile", "atm", "pos")
PRODUCT_CATEGORIES = (
    "groceries",
    "dining",
    "travel",
    "electronics",
    "apparel",
    "utilities",
    "entertainment",
    "health",
    "other",
)
CALL_DIRECTIONS = ("inbound", "outbound")
CALL_REASONS = (
    "billing",
    "technical",
    "cancel_request",
    "inquiry",
    "complaint",
    "account_change",
    "sales",
)
CALL_QUEUES = ("general", "billing", "technical", "retention", "vip")
CALL_OUTCOMES = ("resolved", "transferred", "abandoned", "callback")
COMPLAINT_CHANNELS = ("phone", "email", "web", "app", "branch", "social")
COMPLAINT_CATEGORIES = (
    "billing",
    "service_quality",
    "network",
    "product",
    "staff",
    "fees",
    "other",
)
COMPLAINT_SEVERITIES = ("low", "medium", "high", "critical")
COMPLAINT_STATUSES = ("open", "in_progress", "resolved")
OUTCOME_VALUES = ("retained", "declined", "unreachable", "do_not_contact")


@dataclass(frozen=True)
class Column:
    """One canonical column.

    `type` is the DuckDB type stored in the ODS. `required` rows without a value are rejected.
    `allowed` restricts text to a set of codes; `min_value`/`max_value` bound numbers;
    `pattern` is a regular expression the whole value must match.
    """

    name: str
    type: str
    description: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None
    personal: bool = False


@dataclass(frozen=True)
class Rule:
    """A rule that spans columns: rows where `sql` (DuckDB, over typed columns) is true are rejected."""

    column: str
    sql: str
    reason: str


@dataclass(frozen=True)
class ExtractSpec:
    kind: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    updated_at: str | None = None
    customer_column: str | None = None
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.kind} has no column {name!r}")


CUSTOMERS = ExtractSpec(
    kind="customers",
    description=(
        "Customer master records. Each daily file holds every customer created or changed that "
        "day, as a full record; the latest `updated_at` wins."
    ),
    key=("customer_id",),
    updated_at="updated_at",
    columns=(
        Column("customer_id", "VARCHAR", "Customer identifier, stable across systems.", True),
        Column("full_name", "VARCHAR", "Name as registered; any script (Chinese included).", personal=True),
        Column("phone", "VARCHAR", "Contact phone number, digits with optional +, spaces, dashes.", personal=True, pattern=r"\+?[0-9][0-9 \-]{5,19}"),
        Column("email", "VARCHAR", "Contact e-mail address.", personal=True, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+"),
        Column("region", "VARCHAR", "Sales region.", True, allowed=REGIONS),
        Column("customer_type", "VARCHAR", "Retail or corporate customer.", True, allowed=CUSTOMER_TYPES),
        Column("signup_date", "DATE", "Date the relationship started.", True),
        Column("status", "VARCHAR", "Account status.", True, allowed=CUSTOMER_STATUSES),
        Column("closed_at", "TIMESTAMP", "When the account was closed; required when status is closed."),
        Column("updated_at", "TIMESTAMP", "When the source system last changed this record.", True),
    ),
    rules=(
        Rule("closed_at", "status = 'closed' and closed_at is null", "status is closed but closed_at is empty"),
        Rule("closed_at", "closed_at is not null and closed_at::date < signup_date", "closed_at is before signup_date"),
    ),
)

TRANSACTIONS = ExtractSpec(
    kind="transactions",
    description=(
        "Monetary transactions. `amount` is always the positive size of the movement; "
        "`txn_type` gives its direction. purchase and refund are consumption transactions "
        "(refunds net against purchases); the rest are non-consumption."
    ),
    key=("txn_id",),
    customer_column="customer_id",
    columns=(
        Column("txn_id", "VARCHAR", "Transaction identifier, unique per transaction.", True),
        Column("customer_id", "VARCHAR", "Customer who made the transaction.", True),
        Column("txn_at", "TIMESTAMP", "When the transaction happened (local time).", True),
        Column("txn_type", "VARCHAR", "Kind of movement.", True, allowed=TXN_TYPES),
        Column("channel", "VARCHAR", "Where it happened.", True, allowed=TXN_CHANNELS),
        Column("amount", "DECIMAL(18,2)", "Positive amount in `currency` units.", True, min_value=0),
        Column("currency", "VARCHAR", "ISO 4217 code.", True, pattern=r"[A-Z]{3}"),
        Column("product_category", "VARCHAR", "Merchant category of purchases and refunds.", allowed=PRODUCT_CATEGORIES),
    ),
)

CALLS = ExtractSpec(
    kind="calls",
    description="Call-center contacts, one row per call.",
    key=("call_id",),
    customer_column="customer_id",
    columns=(
        Column("call_id", "VARCHAR", "Call identifier.", True),
        Column("customer_id", "VARCHAR", "Identified caller; empty when the caller was not identified."),
        Column("started_at", "TIMESTAMP", "When the call reached the switch.", True),
        Column("direction", "VARCHAR", "Who called whom.", True, allowed=CALL_DIRECTIONS),
        Column("reason", "VARCHAR", "Reason code chosen by the agent or the IVR.", True, allowed=CALL_REASONS),
        Column("queue", "VARCHAR", "Queue the call was routed to.", True, allowed=CALL_QUEUES),
        Column("agent_id", "VARCHAR", "Agent who answered; empty when abandoned."),
        Column("wait_seconds", "INTEGER", "Seconds in queue before answer or hang-up.", True, min_value=0, max_value=86400),
        Column("talk_seconds", "INTEGER", "Seconds talking with an agent.", True, min_value=0, max_value=86400),
        Column("outcome", "VARCHAR", "How the call ended.", True, allowed=CALL_OUTCOMES),
        Column("transfers", "INTEGER", "Times the call was transferred.", True, min_value=0, max_value=100),
    ),
)

COMPLAINTS = ExtractSpec(
    kind="complaints",
    description=(
        "Complaint cases. A case re-appears each day it changes, as a full record with a newer "
        "`updated_at`; the latest one wins."
    ),
    key=("complaint_id",),
    updated_at="updated_at",
    customer_column="customer_id",
    columns=(
        Column("complaint_id", "VARCHAR", "Complaint case identifier.", True),
        Column("customer_id", "VARCHAR", "Complaining customer.", True),
        Column("opened_at", "TIMESTAMP", "When the case was opened.", True),
        Column("channel", "VARCHAR", "How the complaint arrived.", True, allowed=COMPLAINT_CHANNELS),
        Column("category", "VARCHAR", "What it is about.", True, allowed=COMPLAINT_CATEGORIES),
        Column("severity", "VARCHAR", "Severity, which sets the resolution SLA.", True, allowed=COMPLAINT_SEVERITIES),
        Column("status", "VARCHAR", "Case status.", True, allowed=COMPLAINT_STATUSES),
        Column("resolved_at", "TIMESTAMP", "When it was resolved; required when status is resolved."),
        Column("compensation_amount", "DECIMAL(18,2)", "Goodwill paid, in CNY.", min_value=0),
        Column("satisfaction", "INTEGER", "Customer rating 1-5 after resolution.", min_value=1, max_value=5),
        Column("updated_at", "TIMESTAMP", "When this version of the case was written.", True),
    ),
    rules=(
        Rule("resolved_at", "status = 'resolved' and resolved_at is null", "status is resolved but resolved_at is empty"),
        Rule("resolved_at", "resolved_at < opened_at", "resolved_at is before opened_at"),
    ),
)

OUTCOMES = ExtractSpec(
    kind="outcomes",
    description=(
        "Retention call outcomes uploaded by retention teams through the portal. One row per "
        "contact attempt; `list_id` ties it to the target list it came from."
    ),
    key=("list_id", "customer_id", "contacted_at"),
    customer_column="customer_id",
    columns=(
        Column("list_id", "VARCHAR", "Target list the customer was on.", True),
        Column("team", "VARCHAR", "Retention team that uploaded the outcome.", True),
        Column("agent", "VARCHAR", "Agent who made the contact."),
        Column("customer_id", "VARCHAR", "Contacted customer.", True),
        Column("contacted_at", "TIMESTAMP", "When the contact was made.", True),
        Column("outcome", "VARCHAR", "Result of the contact.", True, allowed=OUTCOME_VALUES),
        Column("note", "VARCHAR", "Free-text note from the agent."),
    ),
)

SPECS: dict[str, ExtractSpec] = {s.kind: s for s in (CUSTOMERS, TRANSACTIONS, CALLS, COMPLAINTS, OUTCOMES)}

# The kinds a source system delivers (outcomes come from the portal, not from a source extract).
SOURCE_KINDS = ("customers", "transactions", "calls", "complaints")
