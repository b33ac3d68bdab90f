# crmmetrics: `crmmetrics serve` on a slim Python, as a non-root user, the store in a volume.
#   docker build -t crmmetrics .
#   docker run -v crmmetrics:/var/lib/crmmetrics -v ./crmmetrics.toml:/etc/crmmetrics/crmmetrics.toml:ro -p 9632:9632 crmmetrics
# Upgrading: back up the store, then `docker run ... crmmetrics store upgrade --config ...`
# (serve refuses a store at an older schema revision). See docs/operations.md.

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY crmmetrics ./crmmetrics
COPY plugins ./plugins
COPY config ./config
COPY dashboards ./dashboards
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRMMETRICS_CONFIG=/etc/crmmetrics/crmmetrics.toml
RUN useradd --system --uid 10001 --home-dir /var/lib/crmmetrics --create-home --shell /usr/sbin/nologin crmmetrics \
    && mkdir -p /etc/crmmetrics
COPY --from=build /wheels /wheels
# Only the wheels built above (--no-index): their versions were fixed in the build stage.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "crmmetrics[postgres]" && rm -rf /wheels
USER 10001
WORKDIR /var/lib/crmmetrics
VOLUME ["/var/lib/crmmetrics"]
EXPOSE 9632
# /-/healthy answers 200 while the process serves (python: the slim image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9632/-/healthy', timeout=4).status != 200)"]
ENTRYPOINT ["crmmetrics"]
CMD ["serve", "--host", "0.0.0.0", "--port", "9632"]
