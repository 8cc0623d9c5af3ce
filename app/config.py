"""Settings read from TABLETOP_* environment variables or a .env file."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import PositiveInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/tabletop.db"


class Settings(BaseSettings):
    """Every setting of the app, with its default for a laptop."""

    model_config = SettingsConfigDict(env_prefix="TABLETOP_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    admin_password: SecretStr | None = None
    broker_url: str | None = None
    public_url: str | None = None
    allowed_origins: Annotated[list[str], NoDecode] = []
    scenarios_dir: Path = Path("scenarios")
    # FULL survives a power cut as well as a crash; NORMAL only a crash but is faster.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    login_token_ttl_hours: int = 24
    # A meeting room shares one NAT address: only failures count, and the limit is generous.
    failed_login_limit: int = 10
    failed_join_limit: int = 30
    failure_window_s: int = 600
    # An address that reaches its limit stays locked this long, however the window slides.
    join_lockout_s: PositiveInt = 300
    # Wrong codes from all addresses together; a room's typos never come near it, a botnet does.
    failed_join_global_limit: PositiveInt = 200
    max_body_bytes: int = 1_000_000
    # At least 10 edits/s sustained must always pass (a fast typist with autosave); 20 leaves room.
    edits_per_second: float = 20.0
    edit_burst: int = 60
    # text for a console on a laptop, json (one object per line) for a server's log collector.
    log_format: Literal["text", "json"] = "text"
    # Build workbooks in a separate worker process: a big export then never holds the server's
    # GIL, which would delay live delivery by hundreds of milliseconds.
    export_worker: bool = True

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_weak_production(self) -> "Settings":
        # A production deployment must say where participants reach it, so cookies can be Secure.
        if self.environment == "production" and not self.public_url:
            raise ValueError("TABLETOP_PUBLIC_URL must be set when TABLETOP_ENVIRONMENT=production")
        return self

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
