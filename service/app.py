"""The Flask app factory: one blueprint per resource, problem+json errors, and the web
questionnaire. The web process imports neither torch nor tensorflow (nor scikit-learn:
predict mode uses the compiled predictor)."""

from __future__ import annotations

import logging

from flask import Flask

from service.api import docs, health, imports, jobs, models, problems, recommendations
from service.api.context import EXTENSION, AppContext
from service.jobs.store import JobStore
from service.settings import ServiceSettings
from service.web import views


def create_app(settings: ServiceSettings | None = None) -> Flask:
    settings = settings or ServiceSettings()
    app = Flask(__name__, template_folder="web/templates")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.extensions[EXTENSION] = AppContext(
        settings, JobStore(settings.job_db_url(), tolerate_damage=True)
    )
    blueprints = (health.bp, models.bp, imports.bp, recommendations.bp, jobs.bp, docs.bp, views.bp)
    for bp in blueprints:
        app.register_blueprint(bp)
    problems.install(app)
    logging.getLogger("fwadvisor").setLevel(logging.INFO)
    return app
