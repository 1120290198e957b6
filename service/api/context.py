"""What the views share: the settings and the job store, kept on the Flask app."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from importlib import metadata

from flask import current_app, request

from service.api.problems import ApiProblem
from service.jobs.store import JobStore
from service.settings import ServiceSettings

EXTENSION = "fwadvisor"


def version() -> str:
    try:
        return metadata.version("framework-advisor")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class AppContext:
    settings: ServiceSettings
    store: JobStore

    def owner(self, key: str | None = None) -> str:
        """Who is asking: the API key's hash when keys are configured (401 without a
        valid one), else the client address. ``key`` overrides the X-API-Key header
        (the web form sends it as a field)."""
        if not self.settings.api_keys:
            return f"addr:{request.remote_addr or 'unknown'}"
        given = key if key is not None else request.headers.get("X-API-Key", "")
        digest = hash_key(given)
        if not given or not any(hmac.compare_digest(digest, k) for k in self.settings.api_keys):
            raise ApiProblem(
                "unauthorized",
                "send a valid key in the X-API-Key header",
                headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
            )
        return f"key:{digest[:32]}"

    def admit(self, owner: str) -> None:
        """Count one job creation by ``owner`` against the per-minute limit (429 past
        it). Called only for a creation: an idempotent replay spends no budget."""
        limit = self.settings.rate_limit_per_minute
        if limit:
            now = time.time()
            window = int(now // 60)
            if self.store.hit(owner, window) > limit:
                retry = str(int(60 - now % 60) + 1)
                raise ApiProblem(
                    "rate_limited",
                    f"at most {limit} jobs per minute; retry in {retry} s",
                    headers={"Retry-After": retry},
                )


def ctx() -> AppContext:
    out: AppContext = current_app.extensions[EXTENSION]
    return out
