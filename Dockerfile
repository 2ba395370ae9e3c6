# chatmock in a container: see README.md, section "Docker".
#
#   docker compose --profile login run --rm login   # sign in once
#   docker compose up -d --build                    # serve on http://127.0.0.1:8000
#   docker compose logs -f chatmock
#
# Stage 1 builds chatmock's wheel and the wheels of its dependencies; stage 2
# installs them from that folder alone (no index, no compiler, no build tools)
# and runs as an unprivileged user with the data folder on a volume.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY chatmock ./chatmock
COPY prompts ./prompts
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="chatmock" \
      org.opencontainers.image.description="ChatGPT account as OpenAI, Anthropic and Ollama APIs" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHATGPT_LOCAL_HOME=/data \
    HOME=/data
RUN groupadd --gid 1000 chatmock \
    && useradd --uid 1000 --gid 1000 --no-log-init --no-create-home --home-dir /data \
       --shell /usr/sbin/nologin chatmock \
    && install --directory --owner 1000 --group 1000 --mode 0700 /data
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links /wheels chatmock
VOLUME ["/data"]
# 8000: the API; 1455: the OAuth callback of `login` (its redirect URI names this port).
EXPOSE 8000 1455
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-m", "chatmock.docker_entrypoint", "healthcheck"]
ENTRYPOINT ["python", "-m", "chatmock.docker_entrypoint"]
CMD ["serve"]
