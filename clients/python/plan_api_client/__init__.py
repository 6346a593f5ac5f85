"""Python client for the county Plan API: `PlanAPI`, `PlanAPIError`, `SubmitResult`."""

from plan_api_client.client import BATCH_LIMIT, PlanAPI, SubmitResult, idempotency_key
from plan_api_client.errors import FieldProblem, PlanAPIError

__all__ = ["BATCH_LIMIT", "FieldProblem", "PlanAPI", "PlanAPIError", "SubmitResult", "idempotency_key"]
__version__ = "0.1.0"
