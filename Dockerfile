# The parcelflow app image: `parcelflow worker|topics|publish|simulate` (docker-compose.yml runs it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY schemas/ schemas/
COPY streams/ streams/
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --create-home --home-dir /data parcelflow

USER parcelflow
WORKDIR /data
# Metrics on every interface of the container (Prometheus scrapes each replica on port 9108).
ENV PARCELFLOW_DATA_DIR=/data \
    PARCELFLOW_METRICS_HOST=0.0.0.0 \
    PARCELFLOW_METRICS_PORT=9108
EXPOSE 9108
ENTRYPOINT ["parcelflow"]
CMD ["worker"]
