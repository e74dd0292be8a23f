# Nurture runtime image: `nurture worker`, `nurture api`, `nurture db upgrade`, ...
#   docker build -t nurture:local .
#   docker run --rm nurture:local --help

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/nurture
# Only what the package needs (pyproject.toml names README.md as the readme).
COPY pyproject.toml README.md ./
COPY nurture ./nurture
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starters ./starters
# Runtime dependencies only: the [test] extra is not installed.
RUN /opt/nurture/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/nurture/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 nurture \
 && useradd --system --uid 10001 --gid nurture --home-dir /home/nurture --create-home --shell /usr/sbin/nologin nurture
COPY --from=build /opt/nurture /opt/nurture
USER nurture
WORKDIR /home/nurture
# 8000: `nurture api`; 9464: the worker's /healthz and /metrics.
EXPOSE 8000 9464
ENTRYPOINT ["nurture"]
CMD ["--help"]
