# One image for a Hugging Face Docker Space: the Gradio UI and the REST API on port 7860, as uid 1000.
#
#   docker build -t daca-kit .                                        # the app alone (DACA_RUNTIME=local)
#   docker build -t daca-kit-dapr --build-arg WITH_DAPR=true .        # plus daprd, placement, scheduler
#
# On a Space, add the variable WITH_DAPR=true in the Space settings: Spaces pass variables as build args.
#
# Secrets (GEMINI_API_KEY, DATABASE_URL, REDIS_URL, AMQP_URL, DACA_ADMIN_TOKEN, ...) are never baked in:
# a Space passes its secrets to the container as environment variables at run time, `docker run -e` does
# the same locally.

# ---- builder: the locked dependencies and the package, in a venv copied whole into the final stage.
# Same base image as the final stage, so the venv's interpreter path and ABI match.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock alone first, so editing the code does not reinstall the dependencies.
COPY requirements.lock ./
# Every file checked against the lock's hashes; --no-deps because the lock is already the full set.
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY daca_kit ./daca_kit
# The package itself (no deps: they are all in the lock), then prove the set is complete and consistent.
RUN pip install --no-deps . && pip check

# ---- dapr: daprd, placement and scheduler from the Dapr release, only when WITH_DAPR=true.
# Downloaded at build time (the Space's build can fetch, the running container should not need to),
# checked against the release's .sha256 files, and left in /out for the final stage to copy.
FROM python:3.11-slim AS dapr
ARG WITH_DAPR=false
# The runtime line matching the dapr Python SDK in requirements.lock (1.19.0): bump them together
# (tests/unit/test_dockerfile.py holds the minor versions equal). That a v1.19.0 runtime release is
# published was not verifiable when this was written (the newest release found was v1.18.3); if the
# download fails, pass --build-arg DAPR_VERSION=<a release from https://github.com/dapr/dapr/releases>.
ARG DAPR_VERSION=1.19.0
ARG TARGETARCH
RUN set -eu; \
    mkdir -p /out; \
    case "$WITH_DAPR" in \
      false) exit 0 ;; \
      true) ;; \
      *) echo "WITH_DAPR must be true or false, not '$WITH_DAPR'" >&2; exit 1 ;; \
    esac; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    arch="${TARGETARCH:-amd64}"; \
    base="https://github.com/dapr/dapr/releases/download/v${DAPR_VERSION}"; \
    for bin in daprd placement scheduler; do \
      file="${bin}_linux_${arch}.tar.gz"; \
      curl -fsSL -o "/tmp/$file" "$base/$file" \
        || { echo "Dapr v${DAPR_VERSION} has no $file: pass --build-arg DAPR_VERSION=<a release from https://github.com/dapr/dapr/releases>" >&2; exit 1; }; \
      curl -fsSL -o "/tmp/$file.sha256" "$base/$file.sha256"; \
      echo "$(cut -d ' ' -f 1 "/tmp/$file.sha256")  /tmp/$file" | sha256sum -c -; \
      mkdir -p "/tmp/$bin"; \
      tar -xzf "/tmp/$file" -C "/tmp/$bin"; \
      install -m 0755 "/tmp/$bin/$bin" "/out/$bin"; \
    done

# ---- final: python:3.11-slim with the venv, the app files and (maybe) the Dapr binaries. No compilers,
# no package manager run, no secrets.
FROM python:3.11-slim AS runtime
# Spaces run the container as uid 1000; the app writes only below its home (data/, ~/.dapr, caches).
RUN useradd -m -u 1000 user \
    && mkdir -p /home/user/app/data \
    && chown -R user:user /home/user/app
ENV HOME=/home/user \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=7860
# Root-owned and read-only for the app: nothing at run time can change the installed code.
COPY --from=builder /opt/venv /opt/venv
# Empty unless WITH_DAPR=true.
COPY --from=dapr /out/ /usr/local/bin/
WORKDIR /home/user/app
COPY --chown=user:user app.py ./
COPY --chown=user:user components ./components
COPY --chown=user:user docker/supervise.py ./docker/supervise.py
USER user
EXPOSE 7860
# Python rather than curl: the slim image has no curl and needs none. Every 60s rather than 30s:
# /health reports each backend's state, and reaching a backend can count against its free-tier quota.
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '7860') + '/health', timeout=8)"]
# Plain image: replaces itself with `python app.py`. Dapr image: supervises placement, scheduler,
# daprd and the app, and exits non-zero when any of them does (docker/supervise.py).
CMD ["python", "docker/supervise.py"]
