# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject alone, so a code change does not reinstall them.
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --no-cache-dir -r requirements.txt
COPY gochat_py/ gochat_py/
COPY worker/ worker/
RUN pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
# The package also runs from /app, not site-packages: migrate.py finds database/migrations
# next to the package directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    ENV=prod \
    SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8080
RUN groupadd --system --gid 10001 gochat \
 && useradd --system --uid 10001 --gid gochat --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gochat
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY database/ database/
COPY gochat_py/ gochat_py/
COPY worker/ worker/
# Code stays root-owned and read-only to the app user, so compile the bytecode now.
RUN python -m compileall -q gochat_py worker
# Uploads (MEDIA_DIR): the one directory the app user writes; a volume in docker-compose.
RUN mkdir -p /var/lib/gochat/media && chown 10001:10001 /var/lib/gochat/media
ENV MEDIA_DIR=/var/lib/gochat/media
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('SERVER_PORT', '8080'), timeout=2)"]
CMD ["python", "-m", "gochat_py"]
