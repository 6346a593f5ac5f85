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
    # Abuse limits (`app/api/rate_limit.py`), in the `limits` library's notation ("600/minute;50/second"),
    # counted in fixed windows: a burst across a window's end may reach twice a limit within its length.
    rate_limit_enabled: bool = Field(default=True, description="false: no request limits at all")
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where counters live: memory:// (per process) or redis://host:6379/0, which every "
        "worker and server must share when several run",
    )
    rate_limit_key_prefix: str = Field(default="plan-api", description="namespace of the counters in a shared store")
    rate_limit_per_address: str = Field(
        default="1200/minute", description="requests per client address, per fixed window (from its first request)"
    )
    rate_limit_per_key: str = Field(
        default="600/minute", description="requests per API key, per fixed window (from its first request)"
    )
    rate_limit_failed_auth: str = Field(
        default="10/minute", description="failed authentications per address before its keyed requests get 429"
    )
    # Database connections (PostgreSQL): bounded waits, so an unreachable database is a fast 503.
    # Sizing (PostgreSQL): the service may open workers × (db_pool_size + db_max_overflow) connections;
    # keep that below max_connections minus headroom (superuser_reserved_connections, migrations, the
    # worker process, psql). Measured (docs/performance.md, 2026-11-27 night): with 2 workers and 16
    # writers, 2, 5 and 10 gave the same reports/s; the workers' CPU is the limit, not connections.
    db_pool_size: int = Field(
        default=5,
        ge=1,
        description="connections kept per worker process; workers × (DB_POOL_SIZE + DB_MAX_OVERFLOW)"
        " must stay below PostgreSQL's max_connections minus headroom",
    )
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
    # Webhooks (`app/services/webhooks.py`, `app/services/webhook_delivery.py`):
    webhook_worker: bool = Field(
        default=True,
        description="run the webhook delivery worker inside the app (off: run `plan-api webhooks run` instead)",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="allow webhook URLs that resolve to private, loopback or link-local addresses",
    )
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names, addresses or networks (CIDR) allowed even though private, e.g. 127.0.0.1",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, description="bound on every delivery request")
    webhook_retry_schedule: list[float] = Field(
        # The Standard Webhooks schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        description="seconds to wait before each retry; an endpoint failing past the last one is disabled",
    )
    webhook_rotation_overlap_seconds: int = Field(
        default=86400, ge=0, description="how long a rotated-out secret keeps signing alongside the new one"
    )
    webhook_concurrency: int = Field(
        default=4, ge=1, le=32, description="requests a webhook worker has under way at once (one per endpoint)"
    )
    webhook_watch_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how often the worker looks for light changes and missing duties (supervision watch)",
    )
    webhook_poll_seconds: float = Field(default=1.0, gt=0, description="the worker's pause when it finds no work")
    response_cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="bytes of rendered GET responses a worker keeps (least recently used out first); 0 = none",
    )
    read_model_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="bytes of today's task pictures a worker keeps for cold lists (app/services/read_model.py),"
        " least recently used out first; 0 = none",
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
