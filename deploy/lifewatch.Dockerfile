# The lifewatch image: one image for every lifewatch service; the compose command picks which
# (ingest, api, notify, dashboards materialize, simulate).  Build context: the repository root.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIFEWATCH_STATE_DIR=/var/lib/lifewatch

WORKDIR /opt/lifewatch
COPY pyproject.toml README.md ./
COPY lifewatch ./lifewatch
COPY ingest ./ingest
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY simulators ./simulators

# Editable install: the data files that live outside Python packages (lifewatch/lifelines/*.yaml,
# the crew console's JS and CSS) are read from the source tree, which a plain wheel would not carry.
RUN pip install -e . \
 && useradd --system --uid 10001 --home-dir /var/lib/lifewatch --create-home lifewatch

USER lifewatch
ENTRYPOINT ["lifewatch"]
CMD ["--help"]
