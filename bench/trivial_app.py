"""The ceiling of the stack: FastAPI on uvicorn returning a precomputed JSON body, no database, no models.

Started by `bench/read_bench.py` exactly as `plan-api serve` starts the real app (one uvicorn worker,
uvicorn's default loop and HTTP implementation, log level info):

    BENCH_BODY_FILE=/tmp/body.json .venv/bin/python -m uvicorn trivial_app:app --app-dir bench --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

BODY = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/body")
async def body() -> Response:
    return Response(BODY, media_type="application/json")
