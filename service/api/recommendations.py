"""POST /v1/recommendations: predict and cached modes answer now; measure makes a job."""

from __future__ import annotations

from recommender.recommend import Recommendation, recommend
from service.api.context import ctx
from service.api.jobs import API_KEY, IDEMPOTENCY, JobView, submit
from service.api.routes import ApiBlueprint, Reply
from service.jobs.requests import RecommendationRequest

bp = ApiBlueprint("recommendations", __name__, tag="recommendations")


def answer(req: RecommendationRequest) -> Recommendation:
    """A predict- or cached-mode recommendation, computed in this process."""
    assert req.mode != "measure"
    settings = ctx().settings
    return recommend(req.resolve(settings), req.answers, req.mode, settings=settings)


@bp.op(
    "/v1/recommendations",
    "POST",
    "PyTorch or TensorFlow for this model and these answers. predict/cached: the "
    "recommendation (200). measure: 202 and a Location of the job that measures.",
    body=RecommendationRequest,
    responses={200: Recommendation, 202: JobView},
    problems=(401, 409, 429),
    headers=(IDEMPOTENCY, API_KEY),
    secured=True,
)
def create_recommendation(body: RecommendationRequest) -> Reply | Recommendation:
    if body.mode != "measure":
        return answer(body)
    reply = submit(body.as_job())
    reply.status = 202
    return reply
