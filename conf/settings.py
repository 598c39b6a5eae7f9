"""Settings shared by every part of the product, read from the environment and `.env`.

Every field's environment variable is its name in upper case; `.env.example`
documents them all with their defaults.
"""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, HttpUrl, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """A setting has a value the product cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    qobrix_api_base_url: HttpUrl | None = Field(
        default=None,
        description="Qobrix API root, e.g. https://acme.qobrix.com/api/v2. Unset: the demo uses the sandbox.",
    )
    qobrix_api_user: str | None = Field(default=None, description="Qobrix API user id (X-Api-User).")
    qobrix_api_key: str | None = Field(default=None, description="Qobrix API key (X-Api-Key).")

    mls2_data_dir: Path = Field(
        default=Path(".mls2"), description="Root of the landing zone, the lakehouse and all state."
    )

    mls2_sandbox_port: int = Field(default=8765, ge=0, le=65535, description="Port of the demo's sandbox.")
    mls2_sandbox_properties: int = Field(default=500, ge=1, description="Properties the demo's sandbox serves.")
    mls2_sandbox_seed: int = Field(default=42, description="Seed of the demo's sandbox data.")

    mls2_api_host: str = Field(default="127.0.0.1", description="Interface the API listens on.")
    mls2_api_port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("mls2_api_port", "databricks_app_port"),
        description="Port the API listens on (as a Databricks App: DATABRICKS_APP_PORT, which the App sets).",
    )

    mls2_integrity_after_update: bool = Field(
        default=True,
        description="Run the integrity suite (`mls2 integrity run`) after each `mls2 pipeline run` and demo update.",
    )
    mls2_integrity_whole_every_hours: float = Field(
        default=24,
        ge=0,
        description="The integrity suite after an update checks only the records changed since the run before "
        "(integrity by key), but checks everything whole when its last whole run is this many hours old "
        "(0: every run whole). `mls2 integrity run` is whole unless given --by-key.",
    )
    mls2_schedule: str = Field(
        default="off",
        pattern=r"^\s*(?i:off|continuous|every ([1-9]\d{0,2}|1[0-3]\d\d|14[0-3]\d|1440) minutes?)\s*$",
        description="Updates on a schedule in `mls2 serve`: off, `every N minutes` (a sync and an update when "
        "Qobrix is configured), or continuous (an update whenever a sync has landed something new). The pipeline "
        "UI can change it; its choice is kept.",
    )
    mls2_integrity_dir: Path | None = Field(
        default=None,
        description="Folder whose `docs` subfolder holds the integrity suite's Data Docs, replaced by every run "
        "(on Databricks: a Volume path). Default: MLS2_DATA_DIR/integrity.",
    )

    mls2_api_auth: bool = Field(
        default=True,
        description="Require OAuth2 bearer tokens on /odata (false only behind your own gateway).",
    )
    mls2_api_token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86400, description="Lifetime of an access token from /oauth/token."
    )
    mls2_api_token_secret: str | None = Field(
        default=None,
        min_length=32,
        description="Key signing access tokens (share it between API processes). "
        "Unset: a random key kept in MLS2_DATA_DIR/state.",
    )
    mls2_api_rate_limit_per_minute: int = Field(
        default=1200, ge=1, description="Requests a client may make per minute, unless its registration says otherwise."
    )
    mls2_api_token_attempts_per_minute: int = Field(
        default=10,
        ge=1,
        description="Token requests per minute per client id and address, and three times as many per address; "
        "beyond them /oauth/token answers 429 without checking the secret (guessing secrets stays slow).",
    )
    mls2_api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API server processes. Python runs one request at a time per process, so on a machine "
        "with several cores more processes answer more requests at once; rate limits are then kept in "
        "MLS2_DATA_DIR/state/rate_limits.sqlite, shared by all of them.",
    )
    mls2_api_access_log: bool = Field(
        default=True,
        description="Log every API request (method, path, status) to stderr. Costs about a tenth of the "
        "server's time per key lookup; turn off where a proxy in front keeps the access log.",
    )
    mls2_api_backend: Literal["snapshot", "databricks"] = Field(
        default="snapshot",
        description="Where the API reads gold: the published embedded snapshot, or a Databricks SQL warehouse.",
    )
    databricks_host: str | None = Field(default=None, description="Workspace host, e.g. adb-123.4.azuredatabricks.net.")
    databricks_http_path: str | None = Field(
        default=None, description="HTTP path of the SQL warehouse, e.g. /sql/1.0/warehouses/abc123."
    )
    databricks_warehouse_id: str | None = Field(
        default=None, description="The SQL warehouse's id, in place of DATABRICKS_HTTP_PATH (a Databricks App's way)."
    )
    databricks_token: str | None = Field(
        default=None,
        description="Token the API uses on the SQL warehouse. Unset: the Databricks SDK's credentials "
        "(a Databricks App's service principal, DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, or a profile).",
    )
    mls2_gold_schema: str = Field(
        default="main.reso_gold",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
        description="catalog.schema holding gold on Databricks.",
    )
    mls2_databricks_pipeline: str = Field(
        default="mls2_dev",
        min_length=1,
        description="The pipeline `mls2 databricks` drives: its id, or its exact name (the bundle names it "
        "`mls2_<target>`: mls2_dev, mls2_prod).",
    )
    mls2_databricks_poll_seconds: float = Field(
        default=10, gt=0, le=300, description="How often `mls2 databricks run` asks how the update is going."
    )
    mls2_landing_url: str | None = Field(
        default=None,
        description="Where pages land: a path or fsspec URL (a Unity Catalog Volume, s3://...). "
        "Default: MLS2_DATA_DIR/landing.",
    )
    mls2_sync_state_url: str | None = Field(
        default=None,
        description="Where the sync state is saved after every sync and restored from when this machine has "
        "none: a path or fsspec URL (on Databricks, a file in the landing Volume). Unset: only "
        "MLS2_DATA_DIR/state.",
    )
    mls2_http_timeout_seconds: float = Field(default=30.0, gt=0, description="Read timeout of a Qobrix call.")
    mls2_http_retries: int = Field(default=6, ge=0, le=20, description="Retries of a failed Qobrix call.")
    mls2_page_size: int = Field(default=100, ge=1, le=100, description="Records per Qobrix page (API max 100).")
    mls2_max_in_flight: int = Field(default=4, ge=1, le=64, description="Qobrix requests in flight at once.")
    mls2_requests_per_second: float | None = Field(default=None, gt=0, description="Cap on Qobrix calls a second.")
    mls2_cdc_overlap_seconds: int = Field(
        default=600,
        ge=0,
        description="How far before the watermark an incremental sync starts (equal times, clock skew).",
    )
    mls2_reconcile_every_hours: float = Field(
        default=24,
        ge=0,
        description="An incremental sync also reconciles (scans every live id for hard deletes) when the "
        "last reconciliation is older than this; 0: only on `mls2 sync --reconcile`.",
    )
    mls2_reconcile_max_deletes_percent: float = Field(
        default=10,
        gt=0,
        le=100,
        description="A reconciliation withholds its deletes when more than this share of the known records "
        "(and more than 10) vanished: an answer that lost records must not empty the feed.",
    )
    mls2_lakehouse_retention_hours: int = Field(
        default=168,
        ge=0,
        description="Once a day, after `mls2 pipeline run`, delete the Delta files no table version of the last "
        "this many hours uses (VACUUM; time travel further back stops working). 0: never vacuum automatically.",
    )
    mls2_landing_retention_days: float = Field(
        default=0,
        ge=0,
        description="With the daily vacuum, delete the landing pages older than this many days whose lines bronze "
        "holds (bronze is then their record, and a full refresh keeps it). 0: keep every page.",
    )
    mls2_min_free_mb: int = Field(
        default=1024,
        ge=0,
        description="An update starts only when the data directory's disk has this much free beyond what the "
        "update is estimated to write (`mls2 pipeline storage` shows both).",
    )
    mls2_engine_memory_limit: str = Field(
        default="2GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory the embedded engine (DuckDB) may use before spilling to MLS2_DATA_DIR/tmp.",
    )
    mls2_engine_key_index_cells: int = Field(
        default=100_000_000,
        ge=0,
        description="Tables merged by key (AUTO CDC targets, views refreshed by key) of at least this many cells "
        "(rows times columns) find the rows a change replaces through a key index (a SQLite file per table in "
        "MLS2_DATA_DIR/lakehouse/_key_index) instead of scanning their key columns; 0 indexes every such table.",
    )
    mls2_engine_key_index_rows: str | None = Field(
        default=None,
        exclude=True,
        description="Replaced by MLS2_ENGINE_KEY_INDEX_CELLS: refused, so a threshold once set is not "
        "silently ignored.",
    )

    @field_validator("qobrix_api_user", "qobrix_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator(
        "mls2_landing_url",
        "mls2_sync_state_url",
        "mls2_integrity_dir",
        "mls2_requests_per_second",
        "mls2_api_token_secret",
        "databricks_host",
        "databricks_http_path",
        "databricks_warehouse_id",
        "databricks_token",
        mode="before",
    )
    @classmethod
    def _blank_optional_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("qobrix_api_base_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("mls2_engine_key_index_rows")
    @classmethod
    def _replaced_setting(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "MLS2_ENGINE_KEY_INDEX_ROWS was replaced by MLS2_ENGINE_KEY_INDEX_CELLS, a threshold of cells "
                "(rows times columns): set that instead"
            )

    @property
    def has_qobrix_credentials(self) -> bool:
        return bool(self.qobrix_api_base_url and self.qobrix_api_user and self.qobrix_api_key)

    def require_qobrix(self) -> tuple[str, str, str]:
        """The Qobrix base URL, user and key, or a SettingsError naming what is missing."""
        missing = [
            name.upper()
            for name in ("qobrix_api_base_url", "qobrix_api_user", "qobrix_api_key")
            if not getattr(self, name)
        ]
        if missing:
            raise SettingsError(
                f"Qobrix is not configured: set {', '.join(missing)} (see .env.example), "
                "or run `mls2 demo` to use the built-in sandbox."
            )
        return str(self.qobrix_api_base_url).rstrip("/"), self.qobrix_api_user, self.qobrix_api_key

    def require_databricks(self) -> tuple[str, str, str | None]:
        """The warehouse's host and HTTP path, and the token (None: the SDK's credentials), or a
        SettingsError naming what is missing."""
        missing = [] if self.databricks_host else ["DATABRICKS_HOST"]
        if not (self.databricks_http_path or self.databricks_warehouse_id):
            missing.append("DATABRICKS_HTTP_PATH (or DATABRICKS_WAREHOUSE_ID)")
        if missing:
            raise SettingsError(f"MLS2_API_BACKEND=databricks needs {', '.join(missing)} (see .env.example)")
        http_path = self.databricks_http_path or f"/sql/1.0/warehouses/{self.databricks_warehouse_id}"
        return self.databricks_host, http_path, self.databricks_token

    @property
    def landing_root(self) -> str:
        """Where the ingestion job writes: MLS2_LANDING_URL, or the local landing folder."""
        return self.mls2_landing_url or str(self.paths.landing)

    @property
    def integrity_docs(self) -> Path:
        """The integrity suite's Data Docs: the `docs` folder of MLS2_INTEGRITY_DIR, which every run replaces."""
        return (self.mls2_integrity_dir or self.paths.root / "integrity") / "docs"

    @property
    def sync_state_path(self) -> Path:
        return self.paths.state / "sync_state.sqlite"

    @cached_property
    def paths(self) -> "DataPaths":
        return DataPaths(self.mls2_data_dir)


class DataPaths:
    """Where each kind of data lives under MLS2_DATA_DIR."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def lakehouse(self) -> Path:
        return self.root / "lakehouse"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def api_clients(self) -> Path:
        """The API clients the operator registered (hashed secrets)."""
        return self.state / "api_clients.json"

    @property
    def operators(self) -> Path:
        """The pipeline UI's operators (hashed passwords)."""
        return self.state / "operators.json"

    @property
    def ui_state(self) -> Path:
        """The pipeline UI's sessions, the updates it started and their progress."""
        return self.state / "ui.sqlite"

    @property
    def server_announcement(self) -> Path:
        """The serving process that runs the pipeline UI for this folder: its URL, pid and the token a
        shell sends it (`mls2 pipeline run` asks that server for the update)."""
        return self.state / "server.json"

    @property
    def api_token_key(self) -> Path:
        return self.state / "api_token.key"

    @property
    def snapshot_pointer(self) -> Path:
        """The file naming the gold snapshot the API serves (replaced atomically on publish)."""
        return self.snapshots / "CURRENT.json"


def setting_names() -> set[str]:
    """Every setting a deployment may set, by its field name: not the replaced ones kept to be refused."""
    return {name for name, field in Settings.model_fields.items() if not field.exclude}


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides on top."""
    try:
        return Settings(**overrides)
    except ValueError as error:
        raise SettingsError(f"Invalid configuration: {error}") from None
