"""The one settings class. Environment variables TOOLKIT_* win over the settings file
(TOOLKIT_CONFIG_FILE, else toolkit.yaml in TOOLKIT_CONFIG_DIR)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from toolkit.kit import clock

# The checkout, for what only lives there (tests, eval-data, specs, benchmarks); the
# product reads its own files from the package (toolkit.defaults, toolkit.migrate).
REPO_ROOT = Path(__file__).resolve().parent.parent

LINE_API_BASE = "https://api.line.me"
SANDBOX_PREFIX = "/sandbox/line"

# Values that appear in docs and examples; a production deployment must not run on them.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev", "development", "insecure", "toolkit", "password"}
)


class ConfigFileError(ValueError):
    """The settings file cannot be read as settings."""


class YamlConfigSource(PydanticBaseSettingsSource):
    """Reads the settings file when present; keys are the field names."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.data: dict[str, Any] = {}
        if path.is_file():
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ConfigFileError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from exc
            if not isinstance(loaded, dict):
                raise ConfigFileError(f"{path}: expected a mapping of setting names to values")
            self.data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOOLKIT_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./toolkit.db"
    # A brand's own config files (line.yaml, chatbot.yaml, purposes.yaml, faq/...): each
    # one there replaces the packaged default of the same name (toolkit.defaults).
    config_dir: Path | None = None
    # Where generated keys live when the database cannot hold them yet; also the demo's home.
    data_dir: Path = Path("./data")

    # Signs admin session cookies and keys the suppression hashes. Generated once and
    # persisted in the database when not given (see toolkit.kit.secrets).
    secret_key: SecretStr | None = None
    suppression_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    base_url: str = "http://127.0.0.1:8000"
    default_locale: Literal["zh-TW", "en"] = "zh-TW"
    timezone: str = "Asia/Taipei"
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    # Cookies marked Secure need HTTPS; on by default in production.
    secure_cookies: bool | None = None
    worker_poll_s: float = Field(default=1.0, gt=0)

    # LINE Messaging API. An explicit line_api_base always wins; without it messages go to
    # the mounted sandbox when line_sandbox is on, else to LINE.
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base: str | None = None
    line_sandbox: bool = False
    # The product's clock moved for a demo or a test: an offset ("+3d", "-90m", seconds) or
    # the time it is now (ISO 8601 with an offset, "...@frozen" to stop it). Refused in production.
    clock_offset: str | None = None
    # How long handled webhook events stay in the inbox for inspection.
    webhook_retention_days: int = Field(default=30, ge=1, le=3650)

    # An OpenAI-compatible endpoint (OpenAI, Azure, Ollama, vLLM) for the FAQ bot's optional
    # semantic signals and `toolkit faq expand`. Configured = base URL and model set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_embedding_model: str = "text-embedding-3-small"
    # Per answer, all model calls together; past it the bot answers from the lexical match.
    llm_timeout_s: float = Field(default=8.0, gt=0, le=120)
    # Customer messages go to the model only when this is on as well (masked first, and the
    # privacy notice then names llm_processor_name): a cross-border transfer needs a decision.
    llm_send_customer_text: bool = False
    llm_processor_name: str = "OpenAI, L.L.C. (USA)"

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str) -> str:
        # psycopg 3 is our only PostgreSQL driver; accept the common spellings.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix):]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("use a sqlite:/// or postgresql:// URL (the toolkit supports SQLite and PostgreSQL)")
        return value

    @field_validator("config_dir", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("config_dir")
    @classmethod
    def _existing_config_dir(cls, value: Path | None) -> Path | None:
        # A mistyped dir would otherwise pass unnoticed, the product speaking with the
        # demo brand's defaults instead of the brand's own words.
        if value is not None and not value.is_dir():
            raise ValueError(f"TOOLKIT_CONFIG_DIR {value} is not a directory")
        return value

    @field_validator("clock_offset")
    @classmethod
    def _readable_clock_setting(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            clock.parse_setting(value)  # raises with what is wrong
            return value
        return None

    @model_validator(mode="after")
    def _keep_real_time_in_production(self) -> "Settings":
        if self.env == "production" and self.clock_offset:
            raise ValueError("TOOLKIT_CLOCK_OFFSET moves the product's clock; it is for demos and tests, not production")
        return self

    def apply_clock(self) -> None:
        """Set the product's clock from clock_offset (entry points call this once at start)."""
        if self.clock_offset:
            clock.set_state(clock.parse_setting(self.clock_offset))

    @model_validator(mode="after")
    def _no_sandbox_in_production(self) -> "Settings":
        # The sandbox shows every message sent to anyone who asks (/sandbox/line/_messages).
        if self.env == "production" and self.line_sandbox:
            raise ValueError("TOOLKIT_LINE_SANDBOX serves every sent message to anonymous callers; "
                             "it is for demos and tests, not production")
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> "Settings":
        if self.env != "production":
            return self
        for name in ("secret_key", "suppression_key", "line_channel_secret", "line_channel_access_token"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value().strip().lower() in KNOWN_DEFAULT_SECRETS:
                raise ValueError(f"TOOLKIT_{name.upper()} is a known default; set a real secret in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_line_api_base(self) -> str:
        if self.line_api_base:
            return self.line_api_base.rstrip("/")
        if self.line_sandbox:
            return self.base_url.rstrip("/") + SANDBOX_PREFIX
        return LINE_API_BASE

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def llm_reads_customer_text(self) -> bool:
        """Whether customer messages may be sent (masked) to the configured model."""
        return self.llm_configured and self.llm_send_customer_text

    @property
    def cookies_secure(self) -> bool:
        return self.env == "production" if self.secure_cookies is None else self.secure_cookies

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        path = settings_file()
        if path is not None:
            sources += (YamlConfigSource(settings_cls, path),)
        return (*sources, file_secret_settings)


def settings_file() -> Path | None:
    """TOOLKIT_CONFIG_FILE, else toolkit.yaml in TOOLKIT_CONFIG_DIR, else none: the
    settings file is found before the settings exist, so only from the environment."""
    if os.environ.get("TOOLKIT_CONFIG_FILE", "").strip():
        return Path(os.environ["TOOLKIT_CONFIG_FILE"])
    if os.environ.get("TOOLKIT_CONFIG_DIR", "").strip():
        return Path(os.environ["TOOLKIT_CONFIG_DIR"]) / "toolkit.yaml"
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
