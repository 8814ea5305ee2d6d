# SPDX-License-Identifier: Apache-2.0
# Builds both executables (ota-cancel-worker and ota-platform-sim) into one small runtime image.
#
#   docker build -t ota-cancel-worker .
#   docker compose up        # broker + simulator + worker, see docker-compose.yml

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
RUN swift build -c release --static-swift-stdlib --product ota-cancel-worker \
    && swift build -c release --static-swift-stdlib --product ota-platform-sim \
    && mkdir -p /out/bin \
    && cp "$(swift build -c release --show-bin-path)/ota-cancel-worker" /out/bin/ \
    && cp "$(swift build -c release --show-bin-path)/ota-platform-sim" /out/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmosquitto1 libsqlite3-0 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/ota-cancel-worker --create-home ota
COPY --from=build /out/bin/ /usr/local/bin/
COPY schemas/ /usr/share/ota-cancel-worker/schemas/
USER ota
WORKDIR /var/lib/ota-cancel-worker
ENV OTA_CANCEL_STATE_DIR=/var/lib/ota-cancel-worker/state \
    OTA_CANCEL_SCHEMA_DIR=/usr/share/ota-cancel-worker/schemas
VOLUME ["/var/lib/ota-cancel-worker"]
ENTRYPOINT ["ota-cancel-worker"]
CMD ["run"]
