# The hedger worker (and its CLI) as an image: `docker compose up` runs it with
# Kafka, Prometheus and Grafana (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package first, so editing config/ or samples/ does not reinstall it.
COPY pyproject.toml README.md ./
COPY hedger/ hedger/
COPY streams/ streams/
RUN pip install .

COPY config/ config/
COPY samples/ samples/

# An unprivileged user; build/ holds the worker's local state (--data-dir default).
RUN useradd --create-home --uid 10001 hedger \
    && mkdir -p /app/build \
    && chown hedger /app/build
USER hedger

EXPOSE 9108
ENTRYPOINT ["hedger"]
CMD ["worker", "--config", "/app/config/hedger.toml", "--bootstrap", "kafka:9092", \
     "--metrics-port", "9108", "--metrics-bind", "0.0.0.0"]
