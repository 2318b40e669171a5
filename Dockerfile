# syntax=docker/dockerfile:1
# IAFactory Agents — one image for `iaf migrate`, `iaf api` and `iaf worker` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# CPU-only torch first (the PyPI wheel would drag in CUDA); `torch==2.13.0` in pyproject.toml
# is then already satisfied by 2.13.0+cpu.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Dependencies before sources, so that editing code does not reinstall them.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY iaf ./iaf
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY schemas ./schemas
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && useradd --system --uid 10001 --gid 0 --home-dir /app --shell /usr/sbin/nologin iaf \
    && mkdir -p /data \
    && chown iaf:0 /data

USER iaf
ENV DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000

CMD ["iaf", "api", "--host", "0.0.0.0"]
