# fedimeter's image: `fedimeter serve` by default; deploy/compose.yaml also runs `fedimeter exporter`
# from it. Build from the repository root: docker build -t fedimeter .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /usr/src/fedimeter
# Only what the package is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY src ./src
# The README's install (`pip install -e .`) without -e: an editable install points into the
# source tree so a developer's edits take effect, while an image wants a fixed copy in
# site-packages that does not depend on this directory.
RUN pip install .

# fedimeter needs no privileges; its home holds the SQLite default when no database URL is set.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/fedimeter \
        --shell /usr/sbin/nologin fedimeter
USER fedimeter
WORKDIR /var/lib/fedimeter

EXPOSE 8000

# /healthz answers while the process serves (/readyz also checks the database); the slim image
# has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Listening beyond loopback needs FEDIMETER_API_TOKEN: without it, serve says so and exits.
CMD ["fedimeter", "serve", "--host", "0.0.0.0"]
