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
    response_cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="bytes of rendered GET responses a worker keeps (least recently used out first); 0 = none",
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
