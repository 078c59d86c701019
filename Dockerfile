# modelrunner: one image, `modelrunner serve` as its entrypoint (see docs/deploy.md).
# Build: docker build -t modelrunner:0.1.0 .   (optional: --build-arg EXTRAS=sklearn,postgres,s3,onnx)

# -- build: a virtual environment with modelrunner and the extras the models need ------------------------
FROM python:3.11-slim AS build
ARG EXTRAS=sklearn,postgres,s3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/modelrunner \
    && /opt/modelrunner/bin/pip install --upgrade pip \
    && /opt/modelrunner/bin/pip install ".[${EXTRAS}]"

# -- runtime: the environment only, run by an unprivileged user ------------------------------------------
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 modelrunner \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/modelrunner --create-home modelrunner
COPY --from=build /opt/modelrunner /opt/modelrunner
ENV PATH=/opt/modelrunner/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/modelrunner \
    MODELRUNNER_HOME=/var/lib/modelrunner
USER 10001:10001
WORKDIR /var/lib/modelrunner
VOLUME ["/var/lib/modelrunner"]
# 8080: HTTP (REST, V2, /admin, /metrics, /healthz, /readyz); 8081: gRPC
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# A non-loopback --host needs MODELRUNNER_ADMIN_TOKEN (docker run -e / a Kubernetes Secret).
ENTRYPOINT ["modelrunner", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--grpc-port", "8081"]
