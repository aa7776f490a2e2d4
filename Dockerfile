# telemon server image: one image for `telemon migrate|ingest|alerts|dashboard|sim` (compose.yaml).
#
# Two stages: the build stage has compilers in case a dependency has no wheel for the target
# platform (e.g. an arm64 server); the runtime stage receives only the finished virtualenv, so no
# build tool, pip cache or source tree ends up in the image.

# Pinned to the exact Python release and Debian release it was tested with (docs/deployment.md,
# "Image versions"): a bare 3.11-slim moves to a new patch release and, some day, a new Debian.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/telemon
WORKDIR /src
# The locked versions first, each file checked against its hash (scripts/lock refreshes them):
# a layer that changes only when the lock does. server.txt is the servers' extra and the bumble
# backend's, for compose's simulator (`telemon sim`); no embedded servers, no test tools.
COPY requirements/server.txt ./requirements/server.txt
RUN /opt/telemon/bin/pip install --require-hashes -r requirements/server.txt
# Only what `pip install .` needs (.dockerignore keeps the rest out of the build context).
COPY pyproject.toml README.md ./
COPY telemon ./telemon
COPY gateway ./gateway
COPY ingest ./ingest
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY firmware_sim ./firmware_sim
COPY console ./console
# A regular (not editable) install: the package and its data files are copied into the venv.
RUN /opt/telemon/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
# The period report's PDF (WeasyPrint, docs/dashboard.md "Period report") lays text out with
# Pango and HarfBuzz and needs a font: the slim image has none of them. WeasyPrint's own list for
# a pip install: GObject, Pango, PangoFT2, HarfBuzz and its subsetter, fontconfig.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged uid that owns nothing in the image but its home (the data directory).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/telemon \
    --shell /usr/sbin/nologin telemon
COPY --from=build /opt/telemon /opt/telemon
ENV PATH=/opt/telemon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TELEMON_DATA_DIR=/var/lib/telemon
USER telemon
WORKDIR /var/lib/telemon
# dashboard, ingest metrics and /healthz, alerts /healthz
EXPOSE 8000 9464 9465
ENTRYPOINT ["telemon"]
CMD ["--help"]
