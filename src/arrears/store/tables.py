"""The relational schema. Migrations in `store/migrations` must match it (`alembic check`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from arrears.domain.limits import MAX_AMOUNT_DIGITS
from arrears.store.types import ExactDecimal, ExactJSON, UTCDateTime, WideDecimal

__all__ = [
    "ApiKeyRow",
    "Base",
    "BilledUsageRow",
    "BillingFailureRow",
    "ComponentRow",
    "ComponentSubscriptionRow",
    "ContractDiscountRow",
    "ContractPhaseRow",
    "ContractRow",
    "CouponRow",
    "CreditNoteRow",
    "CreditNoteSequenceRow",
    "CustomerRow",
    "DiscountRow",
    "InvoiceLineRow",
    "InvoiceRow",
    "InvoiceSequenceRow",
    "MeteredComponentRow",
    "OrderRow",
    "PaymentRow",
    "PlanRow",
    "PlanVariantRow",
    "QuantityComponentRow",
    "RatedItemRow",
    "SellerProfileRow",
    "SellerRow",
    "TaskBodyRow",
    "TaskRow",
    "UsageDayRow",
    "UsageEntryRow",
    "WebhookDeliveryRow",
    "WebhookEndpointRow",
    "WebhookEventRow",
]

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _wide() -> WideDecimal:
    """An amount of an invoice, or a line's quantity: every one `domain.limits` allows."""
    return WideDecimal(precision=MAX_AMOUNT_DIGITS + 6, scale=6)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy's API)


class SellerRow(Base):
    """A tenant. Every other object belongs to exactly one seller."""

    __tablename__ = "sellers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    invoice_prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key of a seller; only the SHA-256 of its secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TenantOwned:
    """Columns of every object that belongs to a seller."""

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), index=True)
    created_at: Mapped[datetime]


class CustomerRow(TenantOwned, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("seller_id", "external_customer_id"),)

    company_name: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email_address: Mapped[str | None] = mapped_column(String(254))
    external_customer_id: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(35))
    tax_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(9, 4))
    address: Mapped[dict[str, str] | None] = mapped_column(ExactJSON)
    vat_id: Mapped[str | None] = mapped_column(String(20))
    payment_terms_days: Mapped[int | None]


class SellerProfileRow(Base):
    """What a seller prints on its invoices (SPEC §12); one row per seller, from its first
    `PUT /seller` on. Apart from `sellers`, which authentication reads on every request."""

    __tablename__ = "seller_profiles"

    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[dict[str, str]] = mapped_column(ExactJSON)
    vat_id: Mapped[str | None] = mapped_column(String(20))
    tax_number: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    bank_account: Mapped[dict[str, str] | None] = mapped_column(ExactJSON)
    payment_terms_days: Mapped[int | None]
    footer: Mapped[str | None] = mapped_column(String(1000))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class ComponentRow(TenantOwned, Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("seller_id", "item_code"),)

    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(50))
    item_code: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000))
    # SPEC §11 `Kind`: "Metered" or "Quantity" (migration 0015 gives older rows Metered).
    kind: Mapped[str] = mapped_column(String(8), server_default="Metered")


class PlanRow(TenantOwned, Base):
    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))


class PlanVariantRow(TenantOwned, Base):
    __tablename__ = "plan_variants"

    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    period_unit: Mapped[str] = mapped_column(String(5))
    period_quantity: Mapped[int]
    recurring_fee: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))
    tax_rate: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    minimum_commitment: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))
    # The notice period (SPEC §11), a billing period's unit and quantity; NULL for none.
    notice_unit: Mapped[str | None] = mapped_column(String(5))
    notice_quantity: Mapped[int | None]


class MeteredComponentRow(Base):
    """A component's pricing and free quota on one plan variant."""

    __tablename__ = "metered_components"

    plan_variant_id: Mapped[str] = mapped_column(
        ForeignKey("plan_variants.id", ondelete="CASCADE"), primary_key=True
    )
    component_id: Mapped[str] = mapped_column(ForeignKey("components.id"), primary_key=True)
    position: Mapped[int]
    # The pricing as SPEC §3 JSON with exact decimals: one column for four models.
    pricing: Mapped[dict[str, object]] = mapped_column(ExactJSON)
    free_quota: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))
    maximum_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))


Index("ix_metered_components_component_id", MeteredComponentRow.component_id)


class QuantityComponentRow(Base):
    """A quantity component's price per unit and period on one plan variant (SPEC §11)."""

    __tablename__ = "quantity_components"

    plan_variant_id: Mapped[str] = mapped_column(
        ForeignKey("plan_variants.id", ondelete="CASCADE"), primary_key=True
    )
    component_id: Mapped[str] = mapped_column(ForeignKey("components.id"), primary_key=True)
    position: Mapped[int]
    price_per_unit: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))


Index("ix_quantity_components_component_id", QuantityComponentRow.component_id)


class ContractRow(TenantOwned, Base):
    __tablename__ = "contracts"
    __table_args__ = (Index("ix_contracts_seller_id_customer_id", "seller_id", "customer_id"),)

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    plan_variant_id: Mapped[str] = mapped_column(ForeignKey("plan_variants.id"), index=True)
    start_date: Mapped[datetime]
    end_date: Mapped[datetime | None]
    # Periods are counted from StartDate; the dates are kept too, for the scheduler's
    # index and for readers, and always equal boundary(n) and boundary(n + 1).
    billed_periods: Mapped[int]
    last_billing_date: Mapped[datetime]
    next_billing_date: Mapped[datetime] = mapped_column(index=True)
    # Set by the final invoice; from then on the contract takes no more usage.
    final_invoice_id: Mapped[str | None] = mapped_column(String(24))
    # Set by an order that sells a plan change, quantities or discounts (SPEC §11), so
    # that billing reads phases, quantities and discounts only for contracts that have any.
    sold_terms: Mapped[bool] = mapped_column(server_default=false())


class ContractPhaseRow(Base):
    """A contract's plan phases (SPEC §11), written by its first plan change: the first
    phase (its first variant, from `StartDate`) and one per change. A contract without
    rows has one phase, its `plan_variant_id` from its `start_date`; with rows,
    `contracts.plan_variant_id` is the variant of the last phase."""

    __tablename__ = "contract_phases"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    starts: Mapped[datetime] = mapped_column(primary_key=True)
    plan_variant_id: Mapped[str] = mapped_column(ForeignKey("plan_variants.id"), index=True)


class ComponentSubscriptionRow(Base):
    """A quantity a contract holds of a quantity component from `starts` on (SPEC §11);
    of two from the same instant, the higher `position` holds."""

    __tablename__ = "component_subscriptions"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[str] = mapped_column(ForeignKey("components.id"))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))
    starts: Mapped[datetime]
    created_at: Mapped[datetime]


class DiscountRow(TenantOwned, Base):
    """A discount (SPEC §11): a percentage or an amount off the lines it applies to."""

    __tablename__ = "discounts"

    name: Mapped[str] = mapped_column(String(200))
    applies_to: Mapped[str] = mapped_column(String(12))
    percentage: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))
    periods: Mapped[int | None]


class CouponRow(TenantOwned, Base):
    """A code that gives a discount, redeemed at most `max_redemptions` times: the
    guarded update of `redemptions` (`DiscountRepository.redeem`) is what keeps it so
    under concurrent orders."""

    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("seller_id", "code"),)

    code: Mapped[str] = mapped_column(String(200))
    discount_id: Mapped[str] = mapped_column(ForeignKey("discounts.id"), index=True)
    max_redemptions: Mapped[int | None]
    valid_until: Mapped[datetime | None]
    redemptions: Mapped[int]


class ContractDiscountRow(Base):
    """A discount a contract has from the billing period `first_period` on."""

    __tablename__ = "contract_discounts"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    discount_id: Mapped[str] = mapped_column(ForeignKey("discounts.id"), index=True)
    first_period: Mapped[int]
    coupon_code: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class UsageEntryRow(Base):
    """A metered usage record. The integer id keeps bulk inserts and invoice links cheap;
    it is drawn at random by `domain.ids.UsageIds`, not numbered by the database, so that
    it tells no seller how many entries others have (migration 0010).

    No foreign keys: sellers, contracts and components are never deleted, and every
    insert resolves its contracts and components first, holding the contracts' row locks
    until it commits (`UsageRepository.contract_terms`). PostgreSQL checked each foreign
    key with a query and a row lock per inserted entry: about two thirds of a bulk insert.
    """

    __tablename__ = "usage_entries"
    __table_args__ = (
        # The database, not the code path, guarantees a key is stored once per contract.
        UniqueConstraint("contract_id", "key"),
        # Billing and the usage API read a contract's entries by due date.
        Index("ix_usage_entries_contract_id_due_date", "contract_id", "due_date"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    seller_id: Mapped[str] = mapped_column(String(32))
    contract_id: Mapped[str] = mapped_column(String(24))
    component_id: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))
    due_date: Mapped[datetime]
    transferred_at: Mapped[datetime]
    key: Mapped[str | None] = mapped_column(String(200))
    memo: Mapped[str | None] = mapped_column(String(1000))
    override_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(24, 6))
    override_name: Mapped[str | None] = mapped_column(String(200))
    override_description: Mapped[str | None] = mapped_column(String(1000))
    # Which submission (bulk task, or one synchronous request) stored the entry.
    submission_id: Mapped[str] = mapped_column(String(24))


class UsageDayRow(Base):
    """The usage of one component on one UTC day, summed: the rollup the console's
    overview reads instead of every entry (`store/usage_days.py`, which keeps it exact
    in each transaction that inserts or deletes entries).

    The quantity is the sum of the entries' quantities scaled by 10**6 and cut into
    three 21-bit parts, each summed on its own: exact on both databases, and no sum of
    parts can overflow 64 bits (as `ExactDecimal.sqlite_sum`). On PostgreSQL each
    connection adds to its own `shard` of a day, so concurrent writers of one seller do
    not queue for one row; SQLite, with one writer, uses shard 0. A day's figure is the
    sum over its shards; `entries` counts its entries (a shard may hold a negative count
    after a delete in another connection)."""

    __tablename__ = "usage_days"

    seller_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    component_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(BigInteger)
    quantity_high: Mapped[int] = mapped_column(BigInteger)
    quantity_middle: Mapped[int] = mapped_column(BigInteger)
    quantity_low: Mapped[int] = mapped_column(BigInteger)


class BilledUsageRow(Base):
    """Which invoice billed a usage entry. The primary key on the entry is the database's
    guarantee that no entry is billed twice.

    A narrow table of its own rather than a column of `usage_entries`: linking a
    million entries then appends a million small rows (about 3 µs each on PostgreSQL)
    instead of rewriting every entry with new entries in each of its indexes (about
    30 µs each). No foreign keys, for the same reason: PostgreSQL checks them with a
    query and a row lock per linked entry. The rows are written only by billing, in the
    transaction that inserts the invoice, for entries it read under the contract's lock,
    and entries are deleted only while unbilled (`UsageRepository.delete_unbilled`)."""

    __tablename__ = "billed_usage"

    usage_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    invoice_id: Mapped[str] = mapped_column(String(24))


class TaskRow(Base):
    """A bulk consumption submission: stored before it is validated, applied by a worker."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("seller_id", "idempotency_key"),
        Index("ix_tasks_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"))
    status: Mapped[str] = mapped_column(String(12))
    body_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    total_records: Mapped[int]
    saved_records: Mapped[int] = mapped_column(default=0)
    duplicate_records: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, object]] | None] = mapped_column(ExactJSON)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class TaskBodyRow(Base):
    """The body of a bulk submission, kept until its task is applied or refused.

    Apart from the task row because claiming, releasing and finishing a task update that
    row, and SQLite rewrites a whole row on every update: with the body inside, claiming
    a 100,000-record task rewrote 17 MB. PostgreSQL stores it uncompressed (migration
    0009): it lives only until the task is applied, and compressing it cost time on the
    way to `Successful`."""

    __tablename__ = "task_bodies"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class InvoiceRow(TenantOwned, Base):
    """An issued invoice. Finalized on insert; no code path updates it."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("seller_id", "invoice_number"),
        # Exactly one regular (or final) invoice per contract period that is not voided,
        # whatever runs billing and however often: the database refuses a second one.
        # A voided invoice's period is billed again (SPEC §10), so the index leaves it out.
        Index(
            "uq_invoices_unvoided_period",
            "contract_id",
            "regular_period",
            unique=True,
            sqlite_where=text("payment_status <> 'Voided'"),
            postgresql_where=text("payment_status <> 'Voided'"),
        ),
        Index("ix_invoices_contract_id_period_index", "contract_id", "period_index"),
        Index("ix_invoices_seller_id_document_date", "seller_id", "document_date"),
    )

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    invoice_number: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    document_date: Mapped[datetime]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    period_index: Mapped[int]
    # The period index for regular and final invoices, NULL for interim ones.
    regular_period: Mapped[int | None]
    subtotal: Mapped[Decimal] = mapped_column(_wide())
    tax_rate: Mapped[Decimal] = mapped_column(ExactDecimal(9, 4))
    tax_amount: Mapped[Decimal] = mapped_column(_wide())
    total: Mapped[Decimal] = mapped_column(_wide())
    status: Mapped[str] = mapped_column(String(10))
    # SPEC §8: when it is due, and who issued and received it, as they were when it was
    # issued (NULL on invoices issued before migration 0014: 14 days, no parties).
    due_date: Mapped[datetime | None]
    seller: Mapped[dict[str, object] | None] = mapped_column(ExactJSON)
    customer: Mapped[dict[str, object] | None] = mapped_column(ExactJSON)
    # What corrections and payments changed since (SPEC §10); the only columns of an
    # issued invoice that change, under the invoice's row lock.
    payment_status: Mapped[str] = mapped_column(String(8), server_default="Open")
    amount_credited: Mapped[Decimal] = mapped_column(_wide(), server_default="0.000000")
    amount_paid: Mapped[Decimal] = mapped_column(_wide(), server_default="0.000000")
    voided_at: Mapped[datetime | None]


class InvoiceLineRow(Base):
    """A line of an invoice, inserted with it in one transaction; neither changes again.

    No foreign key to `invoices`: PostgreSQL checks one with a cached query per backend,
    and when that query was planned while `invoices` was empty (a new database, analyzed)
    it scans the whole table for every line inserted afterwards. Billing 10,000 contracts
    spent 40 of its 72 seconds there."""

    __tablename__ = "invoice_lines"

    invoice_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    component_id: Mapped[str | None] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(String(1000))
    # A line's quantity is a period's sum, its amount may price it by the smallest
    # package: both can pass 64 bits, so a line's numbers are all wide (migration 0011).
    quantity: Mapped[Decimal] = mapped_column(_wide())
    free_quantity: Mapped[Decimal] = mapped_column(_wide())
    billable_quantity: Mapped[Decimal] = mapped_column(_wide())
    late: Mapped[bool]
    override: Mapped[bool]
    unit_price: Mapped[Decimal | None] = mapped_column(_wide())
    # Exact tier breakdown and the billed usage ids, as JSON with exact decimals.
    tiers: Mapped[list[dict[str, object]]] = mapped_column(ExactJSON)
    usage_ids: Mapped[list[int]] = mapped_column(ExactJSON)
    amount: Mapped[Decimal] = mapped_column(_wide())
    # SPEC §11: the plan phase whose variant rated the line, the discount a line grants.
    phase_from: Mapped[datetime | None]
    discount_id: Mapped[str | None] = mapped_column(String(24))


class InvoiceSequenceRow(Base):
    """The last invoice number issued per seller and year; its row lock keeps the
    numbers gapless under concurrent billing (a rolled-back invoice returns its number)."""

    __tablename__ = "invoice_sequences"

    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int]


class CreditNoteRow(TenantOwned, Base):
    """A credit note (SPEC §10): issued once, never changed, like an invoice."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("seller_id", "credit_note_number"),
        Index("ix_credit_notes_seller_id_document_date", "seller_id", "document_date"),
    )

    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    contract_id: Mapped[str] = mapped_column(String(24))
    customer_id: Mapped[str] = mapped_column(String(24), index=True)
    credit_note_number: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(1000))
    currency: Mapped[str] = mapped_column(String(3))
    document_date: Mapped[datetime]
    # [{"LineIndex", "Description", "Amount"}] with exact decimals: read whole, never
    # queried by line (an invoice has few credit notes).
    lines: Mapped[list[dict[str, object]]] = mapped_column(ExactJSON)
    subtotal: Mapped[Decimal] = mapped_column(_wide())
    tax_amount: Mapped[Decimal] = mapped_column(_wide())
    total: Mapped[Decimal] = mapped_column(_wide())


class CreditNoteSequenceRow(Base):
    """The last credit note number per seller and year: a sequence of its own beside the
    invoices' (`<prefix>-CN-<year>-<000001>`), gapless for the same reason."""

    __tablename__ = "credit_note_sequences"

    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int]


class PaymentRow(TenantOwned, Base):
    """Money received for an invoice. The unique reference per invoice is what makes
    recording a payment idempotent, whoever sends it twice."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("invoice_id", "reference"),)

    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[Decimal] = mapped_column(_wide())
    paid_at: Mapped[datetime]
    reference: Mapped[str] = mapped_column(String(200))


class OrderRow(TenantOwned, Base):
    __tablename__ = "orders"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(24))


class RatedItemRow(TenantOwned, Base):
    """A one-off charge of an order, billed on the contract's next invoice."""

    __tablename__ = "rated_items"
    __table_args__ = (Index("ix_rated_items_contract_id_invoice_id", "contract_id", "invoice_id"),)

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    description: Mapped[str] = mapped_column(String(1000))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))
    price_per_unit: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6))
    invoice_id: Mapped[str | None] = mapped_column(String(24))


class BillingFailureRow(Base):
    """A contract whose last billing attempt failed for a reason of its own (not an
    outage), until an attempt bills it: one row per failing contract, so the table
    stays as small as the number of contracts that cannot be billed."""

    __tablename__ = "billing_failures"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(1000))
    # The exception's type, for operators (never shown to the seller).
    error: Mapped[str] = mapped_column(String(200))
    first_failed_at: Mapped[datetime]
    failed_at: Mapped[datetime]
    attempts: Mapped[int]


class WebhookEndpointRow(TenantOwned, Base):
    """A seller's receiver of events (docs/webhooks.md). Its secrets are stored encrypted
    (`services.webhook_secrets`): a dump of the database alone signs nothing."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    # The subscribed event types, comma-separated (or `*`).
    events: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(1000))
    disabled_at: Mapped[datetime | None]
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    # A rotated-out secret, which signs beside the new one until it expires.
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]


class WebhookEventRow(Base):
    """An event, written in the transaction of the change it reports (the outbox): its
    body is stored exactly as it is sent and signed, on every attempt alike."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"))
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """One attempt to deliver an event to an endpoint: Pending until a worker makes it,
    then Succeeded or Failed with what the receiver answered. A failed attempt that the
    schedule retries has its successor, a Pending row, written with its outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The workers' queue: what is due, soonest first.
        Index("ix_webhook_deliveries_due", "status", "due_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime]
    # When the event's schedule began: it is retried for three days from then. Null for
    # an attempt asked for by hand, which is made once and not followed by others.
    schedule_from: Mapped[datetime | None]
    attempted_at: Mapped[datetime | None]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(String(1024))
    next_attempt_at: Mapped[datetime | None]
    # The worker sending it, until when (real time, like task leases).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
