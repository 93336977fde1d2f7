# One image for every Trial Ledger service; the command names the module to run:
#   docker run ... trial-ledger services.enrollment
#   docker run ... trial-ledger shared.adapters.create_topics
# deploy/docker-compose.yml builds it and runs each service from it.

# The official Python image; compose passes TL_PYTHON_IMAGE where it is set (a stand-in
# where no registry answers: deploy/standins/build.sh).
ARG TL_PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: a virtual environment with the project and its pinned dependencies --------
FROM ${TL_PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# pyproject.toml pins every runtime dependency exactly, psycopg's libpq among them (as a
# wheel: psycopg[binary]), so the final stage needs no system packages.
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY studies ./studies
# DL3013 asks for `pkg==version`: what is installed here is this project, whose own
# dependencies pyproject.toml pins with `==`.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir .

# --- final: the interpreter, the environment, no compilers or build tools ----------------
FROM ${TL_PYTHON_IMAGE}

LABEL org.opencontainers.image.title="trial-ledger" \
      org.opencontainers.image.description="Event-sourced audit ledger for the CAR-T trial NCT05030779"

# No home directory: matplotlib (the projections' plots) keeps its font cache in /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

# A fixed uid, so that files it writes into volumes (the keys) keep one owner across
# rebuilds. The key folders exist in the image so that a new named volume mounted on
# them starts with this owner and mode.
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --no-log-init --uid 10001 --gid ledger --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ledger \
    && mkdir -p /var/lib/trial-ledger/keys/public /var/lib/trial-ledger/keys/token \
       /var/lib/trial-ledger/keys/record /var/lib/trial-ledger/keys/checkpoint \
    && chmod 700 /var/lib/trial-ledger/keys/token /var/lib/trial-ledger/keys/record \
       /var/lib/trial-ledger/keys/checkpoint \
    && chown -R ledger:ledger /var/lib/trial-ledger

COPY --from=builder /opt/venv /opt/venv
COPY deploy/keygen.py /opt/trial-ledger/keygen.py

USER 10001:10001
WORKDIR /opt/trial-ledger
ENTRYPOINT ["python", "-m"]
