"""Configuration from environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from arrears.domain.clock import (
    EARLIEST,
    LATEST,
    Clock,
    SystemClock,
    TestClock,
    in_range,
    parse_instant,
)
from arrears.services.leases import DEFAULT_HEARTBEAT, DEFAULT_LEASE, LeaseTerms
from arrears.services.webhook_secrets import SecretBox

__all__ = ["Settings", "clock_for", "lease_terms_for", "webhook_secrets_for"]


class Settings(BaseSettings):
    """Every setting of Arrears; each field is read from `ARREARS_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="ARREARS_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite:///arrears.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db.",
    )
    admin_token: str | None = Field(
        default=None,
        description="Bearer token for /admin endpoints; unset disables them (404).",
    )
    test_clock: str | None = Field(
        default=None,
        description="`1` (start at real time) or an ISO 8601 instant: enables the test clock.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    bulk_max_records: int = Field(
        default=100_000, ge=1, description="Most records in one bulk submission (413 beyond)."
    )
    bulk_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest bulk submission body (413 beyond)."
    )
    embedded_worker: bool = Field(
        default=True, description="Run the task worker inside `arrears serve`."
    )
    metrics: bool = Field(
        default=True, description="Serve Prometheus metrics at `/metrics` (docs/operating.md)."
    )
    metrics_token: str | None = Field(
        default=None, description="If set, `/metrics` requires `Authorization: Bearer <it>`."
    )
    lease_seconds: float = Field(
        default=DEFAULT_LEASE.total_seconds(),
        ge=1,
        le=3600,
        description="A worker's hold on a task it applies, renewed by its heartbeat; "
        "the longest a dead worker's task waits.",
    )
    heartbeat_seconds: float = Field(
        default=DEFAULT_HEARTBEAT.total_seconds(),
        gt=0,
        description="How often a worker renews its lease; at most half of `lease_seconds`.",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Allow webhook targets on loopback and private networks (refused by "
        "default: docs/webhooks.md).",
    )
    webhooks_secrets_key: str | None = Field(
        default=None,
        description="Fernet key(s), comma-separated, that encrypt webhook secrets at rest "
        "(the first encrypts); unset: kept in `webhooks_secrets_key_file`.",
    )
    webhooks_secrets_key_file: str = Field(
        default="arrears-webhooks.key",
        description="Where the key of webhook secrets is kept when "
        "`ARREARS_WEBHOOKS_SECRETS_KEY` is unset; made (mode 0600) on first use.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json` lines for machines or `text` for a terminal."
    )

    @field_validator("test_clock")
    @classmethod
    def _test_clock_is_1_or_instant(cls, value: str | None) -> str | None:
        if value in (None, "", "0"):
            return None
        if value != "1" and not in_range(parse_instant(value)):
            raise ValueError(f"the test clock starts from {EARLIEST.year} to {LATEST.year - 1}")
        return value

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        # One late renewal must not cost a live worker its task.
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                "ARREARS_HEARTBEAT_SECONDS must be at most half of ARREARS_LEASE_SECONDS"
            )
        return self

    @cached_property
    def test_clock_start(self) -> datetime | None:
        """The instant the test clock starts at, or None for the real clock."""
        if self.test_clock is None or self.test_clock == "1":
            return None
        return parse_instant(self.test_clock)

    @property
    def uses_test_clock(self) -> bool:
        return self.test_clock is not None


def clock_for(settings: Settings) -> Clock:
    """The real clock, or the test clock when ARREARS_TEST_CLOCK is set."""
    if settings.uses_test_clock:
        return TestClock(settings.test_clock_start)
    return SystemClock()


def lease_terms_for(settings: Settings) -> LeaseTerms:
    """How workers lease the tasks they apply: `ARREARS_LEASE_SECONDS` renewed every
    `ARREARS_HEARTBEAT_SECONDS`, on the real time (never the test clock)."""
    return LeaseTerms(
        length=timedelta(seconds=settings.lease_seconds),
        renew_every=timedelta(seconds=settings.heartbeat_seconds),
    )


def webhook_secrets_for(settings: Settings) -> SecretBox:
    """The key to webhook secrets: `ARREARS_WEBHOOKS_SECRETS_KEY`, else the key file
    (docs/webhooks.md, "Secrets"); one box per configuration, so the key is read once."""
    return _secret_box(settings.webhooks_secrets_key, settings.webhooks_secrets_key_file)


@lru_cache(maxsize=8)
def _secret_box(keys: str | None, key_file: str) -> SecretBox:
    return SecretBox(keys) if keys else SecretBox(key_file=key_file)
