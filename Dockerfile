# Production image: PostgreSQL via DATABASE_URL, migrations then uvicorn.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from the lock file (the versions CI tested), so code changes do not reinstall them.
COPY requirements/base.txt ./requirements/base.txt
RUN pip install -r requirements/base.txt

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
# The department client ships in the server's distribution (plan-api submit/template/tasks).
COPY clients/python/plan_api_client ./clients/python/plan_api_client
COPY migrations ./migrations
COPY seed ./seed
# Editable: the app finds migrations/ and seed/ next to its package.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app planapi \
    && mkdir -p /app/data && chown planapi /app/data

USER planapi
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

# Migrate, seed the plan if the database has none, then serve. Workers are stateless: scale by
# running more containers (or WEB_CONCURRENCY) against the same PostgreSQL. Behind a reverse proxy,
# set FORWARDED_ALLOW_IPS to the proxy's address so the audit log records the real caller; unset,
# no forwarded header is believed.
CMD ["sh", "-c", "exec plan-api serve --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2}"]
