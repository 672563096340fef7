# aidgraph application image: the GraphQL API and the console, served by uvicorn (`aidgraph serve`).
#
#   docker build -t aidgraph .
#   docker compose up -d        # with PostgreSQL and OpenSearch: see compose.yaml
#
# The image runs as an unprivileged user, migrates nothing by itself (run `aidgraph init-db` once, as the
# compose file's `migrate` service does) and answers /healthz (alive) and /readyz (database migrated).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY aidgraph ./aidgraph
COPY core ./core
COPY schema ./schema
COPY plugins ./plugins
COPY province_configs ./province_configs
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIDGRAPH_ENV=production \
    AIDGRAPH_STATE_DIR=/var/lib/aidgraph
RUN useradd --system --create-home --home-dir /var/lib/aidgraph aidgraph
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER aidgraph
WORKDIR /var/lib/aidgraph
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["aidgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
