"""Settings of the web service and the job workers: the shared ``Settings`` plus the
service's own knobs (same ``FWADVISOR_`` environment prefix)."""

from __future__ import annotations

from pydantic import Field

from probes.config import Settings


class ServiceSettings(Settings):
    host: str = Field(default="127.0.0.1", description="Address `fwadvisor serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `fwadvisor serve` binds.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job store; default: SQLite in data_dir "
        "(jobs.sqlite). postgresql+psycopg://user@host/db works too.",
    )
    max_body_bytes: int = Field(default=1_000_000, gt=0, description="Larger bodies get 413.")
    max_upload_bytes: int = Field(
        default=256 * 2**20, gt=0, description="Largest model file POST /v1/imports takes."
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="sha256 hex digests of the accepted API keys (`fwadvisor api-key new`). "
        "Empty: no authentication. When set, creating jobs needs `X-API-Key`.",
    )
    rate_limit_per_minute: int = Field(
        default=30, ge=0, description="Job creations per key (or client address) per minute."
    )
    heartbeat_s: float = Field(default=5.0, gt=0, description="Job and worker heartbeat.")
    stale_after_s: float = Field(
        default=30.0, gt=0, description="A running job without a heartbeat this long is lost."
    )
    max_attempts: int = Field(default=2, ge=1, description="Tries of a job whose worker died.")
    worker_seen_s: float = Field(
        default=60.0, gt=0, description="/v1/ready wants a worker seen within this long."
    )
    poll_s: float = Field(default=0.5, gt=0, description="Idle worker's poll interval.")

    def job_db_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'jobs.sqlite').resolve()}"
