"""Settings from environment variables (prefix ``TELEMON_``) or a ``.env`` file.

Leave ``TELEMON_DATABASE_URL`` or ``TELEMON_MQTT_URL`` unset and the demo brings its own embedded
PostgreSQL and MQTT broker; every long-running service requires them to be set.

Any setting can also come from a file named by ``TELEMON_<NAME>_FILE`` (Docker secrets, mounted
at /run/secrets/...): a secret in a file stays out of ``docker inspect`` and of the process
environment that every child process inherits.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "TELEMON_"
FILE_SUFFIX = "_FILE"


class SettingFileError(ValueError):
    """A ``TELEMON_*_FILE`` setting that cannot be used: the message says which and why."""


def read_setting_file(variable: str, path: str) -> str:
    """The content of a setting's file, without the trailing newline editors and echo add."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingFileError(f"{variable}={path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SettingFileError(f"{variable}={path}: not UTF-8 text") from None
    value = text.rstrip("\r\n")
    if not value:
        raise SettingFileError(f"{variable}={path}: the file is empty")
    return value


class SettingFilesSource(PydanticBaseSettingsSource):
    """``TELEMON_<NAME>_FILE`` from the process environment: the named file's content.

    Setting both ``TELEMON_<NAME>`` and ``TELEMON_<NAME>_FILE`` is refused rather than one
    silently winning: after a rotation the operator could not tell which secret is in use.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}{FILE_SUFFIX}"
        path = os.environ.get(variable)
        if path is None:
            return None, field_name, False
        direct = variable.removesuffix(FILE_SUFFIX)
        if direct in os.environ:
            raise SettingFileError(f"both {direct} and {variable} are set: keep one")
        return read_setting_file(variable, path), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name] = value
        return values


# A gateway replays its outbox after an outage: at its bound of 2,000,000 entries that is about
# 23 days of one continuous 1 Hz oximetry stream. Chunks younger than this stay uncompressed, so
# a replayed backlog never lands in a compressed chunk (docs/storage.md, "Compression").
COMPRESSION_HORIZON_DAYS = 30


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A file named in the environment outranks .env, as the environment itself does.
        return (
            init_settings,
            SettingFilesSource(settings_cls),
            env_settings,
            dotenv_settings,
            file_secret_settings,
        )

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL, e.g. postgresql://telemon@db:5432/telemon"
    )
    database_read_url: str | None = Field(
        default=None,
        description="A streaming replica the dashboard and FHIR read from; unset: the primary "
        "(docs/scaling.md, 'Read replica')",
    )
    mqtt_url: str | None = Field(
        default=None, description="Broker URL: mqtt://user:pass@host:1883 or mqtts://host:8883"
    )
    mqtt_ca_file: Path | None = None
    data_dir: Path = Field(default=Path(".telemon"), description="Local state: embedded servers")
    language: Literal["it", "en"] = "it"

    # Storage (docs/storage.md)
    storage_backend: Literal["auto", "native", "timescale"] = Field(
        default="auto",
        description="auto: TimescaleDB when usable (preloaded, licence 'timescale'), else native",
    )
    observation_retention_days: int = Field(default=3650, ge=30)
    compress_after_days: int = Field(default=COMPRESSION_HORIZON_DAYS)
    # Apart from the observations': the Garante's guidelines on health dossiers keep access
    # logs at least 24 months (docs/privacy.md).
    audit_retention_months: int = Field(default=24, ge=24)

    # Ingest
    ingest_batch_size: int = Field(default=5000, ge=1)
    ingest_batch_ms: int = Field(default=200, ge=1)
    ingest_shared_group: str | None = "ingest"
    ingest_metrics_port: int = 9464

    # Dashboard
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base of links in SMS")
    secret_key: SecretStr = SecretStr("change-me-in-production")
    status_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a monitoring probe sends for GET /status; unset: admins only",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies whose X-Forwarded-For is believed: addresses or networks, "
        "comma-separated; empty: none (docs/deployment.md)",
    )

    # SMS (Twilio); without credentials, messages go to the outbox table shown in the dashboard
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(
        default=None, description="E.164 sender or Messaging Service SID"
    )
    twilio_base_url: str | None = Field(
        default=None, description="Override the Twilio API host (tests use a local fake)"
    )
    service_centre_phone: str | None = None

    # Patient reminders (alerts/reminders, docs/alerts.md "Patient reminders")
    reminders_per_day: int = Field(
        default=2, ge=0, description="At most this many reminder SMS a patient a local day"
    )
    reminder_quiet_start: time = Field(
        default=time(21, 0), description="No reminder from this local time (Europe/Rome)"
    )
    reminder_quiet_end: time = Field(default=time(8, 0), description="... until this one")
    reminder_delay_minutes: int = Field(
        default=30, ge=0, description="A measurement counts as missed this long after it was due"
    )

    @field_validator("compress_after_days")
    @classmethod
    def _compress_after_the_outbox_horizon(cls, value: int) -> int:
        if value < COMPRESSION_HORIZON_DAYS:
            raise ValueError(
                f"{value} days is below the gateways' outbox horizon of "
                f"{COMPRESSION_HORIZON_DAYS} days: a replayed backlog would be inserted into "
                "compressed chunks, each late row decompressing a batch (docs/storage.md)"
            )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        # Refused here, at startup: uvicorn would take a name or a typo as a literal that never
        # matches, and "*" would let any client write its own address into the audit log.
        items = [item.strip() for item in value.split(",")] if value.strip() else []
        for item in items:
            ipaddress.ip_network(item, strict=False)
        return ",".join(items)


def get_settings() -> Settings:
    """Settings as the environment says now (read anew: tests change the environment)."""
    return Settings()
