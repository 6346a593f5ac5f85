"""Settings, read once from the environment (and `.env`). Every knob the service has is here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DIR = REPO_ROOT / "seed"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{REPO_ROOT / 'data' / 'plan-api.sqlite3'}",
        description="SQLAlchemy URL. Default: embedded SQLite under ./data; production: postgresql+psycopg://…",
    )
    seed_plan_path: Path = SEED_DIR / "xiji-fzsh-2021-2025.txt"
    seed_plan_slug: str = "xiji-fzsh-2021-2025"
    seed_units_path: Path = SEED_DIR / "units"  # a directory: one `<jurisdiction code>.toml` per jurisdiction
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty = off")
    require_key_for_reads: bool = Field(default=False, description="GET requests need an API key too")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="larger request bodies get 413")
    timezone: str = Field(
        default="Asia/Shanghai",
        description="The county's time zone: deadlines and as_of dates are its local calendar days",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed; "
        "empty: none (the audit log records the peer address)",
    )
    # Abuse limits (`app/api/rate_limit.py`), in the `limits` library's notation ("600/minute;50/second").
    rate_limit_enabled: bool = Field(default=True, description="false: no request limits at all")
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where counters live: memory:// (per process) or redis://host:6379/0, which every "
        "worker and server must share when several run",
    )
    rate_limit_key_prefix: str = Field(default="plan-api", description="namespace of the counters in a shared store")
    rate_limit_per_address: str = Field(default="1200/minute", description="requests per client address")
    rate_limit_per_key: str = Field(default="600/minute", description="requests per API key")
    rate_limit_failed_auth: str = Field(
        default="10/minute", description="failed authentications per address before its keyed requests get 429"
    )
    # Database connections (PostgreSQL): bounded waits, so an unreachable database is a fast 503.
    db_pool_size: int = Field(default=5, ge=1, description="connections kept per worker process")
    db_max_overflow: int = Field(default=5, ge=0, description="extra connections a worker may open under load")
    db_pool_timeout: float = Field(default=5.0, gt=0, description="seconds a request waits for a free connection")
    db_connect_timeout: int = Field(default=3, ge=1, description="seconds to establish a new connection")
    # Warning lights (亮灯), rule set `app/services/lights.py`:
    light_missing_days: int = Field(
        default=10,
        ge=0,
        description="red when a duty of the latest closed period is missing more than this many days past its deadline",
    )
    light_due_soon_days: int = Field(
        default=30, ge=0, description="yellow when an unfinished task is due within this many days"
    )
    light_lag_tolerance: int = Field(
        default=20,
        ge=0,
        le=100,
        description="yellow when progress lags the progress expected from elapsed time by more points than this",
    )
    sql_echo: bool = False
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        # A bare postgresql:// URL would pick psycopg2, which we do not ship.
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not (value.startswith("sqlite") or value.startswith("postgresql+psycopg")):
            raise ValueError("DATABASE_URL must be sqlite:///… or postgresql+psycopg://…")
        return value

    @field_validator("rate_limit_per_address", "rate_limit_per_key", "rate_limit_failed_auth")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # raises ValueError on anything but "N/unit[;N/unit…]"
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
