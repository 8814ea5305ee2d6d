# SPDX-License-Identifier: Apache-2.0
# Builds both executables (ota-cancel-worker and ota-platform-sim) into one small runtime image.
#
#   docker build --build-arg OTA_CANCEL_REVISION="$(git rev-parse --short HEAD)" -t ota-cancel-worker .
#   docker compose up        # broker + simulator + worker, see docker-compose.yml
#
# The runtime image holds the two binaries and their shared libraries, nothing else: the command schemas are
# built into the worker, and its health check is the worker itself (`ota-cancel-worker health`; no curl).

FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmosquitto-dev pkg-config libsqlite3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies first so that source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
COPY schemas ./schemas
# The build plugin that bakes the revision and the schemas into the binary, and the script it runs.
COPY Plugins ./Plugins
COPY scripts/lib/build-info.sh ./scripts/lib/build-info.sh
# The git revision baked into the binary (`--version`, ota_cancel_build_info): .git is not copied into the image,
# so the build plugin reads it from here.
ARG OTA_CANCEL_REVISION=unknown
ENV OTA_CANCEL_REVISION=$OTA_CANCEL_REVISION
RUN swift build -c release --static-swift-stdlib --product ota-cancel-worker \
    && swift build -c release --static-swift-stdlib --product ota-platform-sim \
    && mkdir -p /out/bin \
    && cp "$(swift build -c release --show-bin-path)/ota-cancel-worker" /out/bin/ \
    && cp "$(swift build -c release --show-bin-path)/ota-platform-sim" /out/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmosquitto1 libsqlite3-0 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ota \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ota-cancel-worker --create-home ota
COPY --from=build /out/bin/ /usr/local/bin/
# Numeric, so that an orchestrator can check it is not root without reading /etc/passwd (Kubernetes'
# runAsNonRoot refuses a named user); it is the `ota` user created above.
USER 10001:10001
WORKDIR /var/lib/ota-cancel-worker
# The ops endpoints (/health/live, /health/ready, /metrics) listen on every interface in the image: probes and
# scrapes come from outside the container (Docker's port mapping, the kubelet, Prometheus), which a worker on
# 127.0.0.1 would refuse. They are unauthenticated: publish the port to trusted networks only.
ENV OTA_CANCEL_STATE_DIR=/var/lib/ota-cancel-worker/state \
    OTA_CANCEL_OPS_HOST=0.0.0.0 \
    OTA_CANCEL_OPS_PORT=9464
EXPOSE 9464
VOLUME ["/var/lib/ota-cancel-worker"]
# Healthy while connected to the broker and subscribed (/health/ready answers 200). The start period covers the
# first connection and the journal's recovery; the probe's own timeout (3 s) is below Docker's. It reads
# OTA_CANCEL_OPS_HOST/PORT as the worker does (0.0.0.0 probes loopback). The simulator, from the same image,
# sets its own (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["ota-cancel-worker", "health"]
ENTRYPOINT ["ota-cancel-worker"]
CMD ["run"]
