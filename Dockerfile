# The cdc host image.
#
#   docker build -t cdc:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/config:/config:ro" -e PG_PASSWORD=... cdc:0.1.0
#
# With no arguments it runs `cdc run /config/pipeline.yaml --platform-config /config/platform.yaml`:
# mount a directory holding both files on /config (docs/deployment.md; deploy/compose.yaml and
# helm/cdc do). Logs are JSON lines (CDC_LOG_FORMAT=json); `-e CDC_LOG_FORMAT=human` for a terminal.
#
# The binary carries the plugin SDK and the WIT (embedded from sdk/ and wit/ by host/build.rs), so
# the image can start a plugin project too (building it needs a Rust toolchain with wasm32-wasip2):
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work cdc:0.1.0 \
#     plugin new my-plugin --kind transform
#
# Layout inside the image:
#   /usr/local/bin/cdc   the binary (ENTRYPOINT)
#   /config              pipeline.yaml and platform.yaml (mount them; none are baked in)
#   /opt/cdc/plugins     a place for .wasm plugins referenced by path from pipeline.yaml
#   /var/lib/cdc         writable state: the working directory and HOME, so the compiled-plugin
#                        cache and any other local state land here (mount a volume on it when the
#                        root filesystem is read-only)

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
# A failing command on the left of a pipe fails the step.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# rdkafka is built with `cmake-build` (Debian's librdkafka 2.0.2 is too old), so librdkafka is
# compiled here. The packages it needs are listed once, in scripts/build-packages.txt, which
# scripts/setup-build.sh reads too. Versions are not pinned: they come from the pinned Debian
# release of the pinned base image, and Debian replaces exact versions in its archive with every
# security update, which would break builds.
COPY scripts/build-packages.txt /tmp/build-packages.txt
# hadolint ignore=DL3008
RUN apt-get update \
 && sed -e 's/#.*//' -e '/^[[:space:]]*$/d' /tmp/build-packages.txt \
      | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/build-packages.txt

ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
WORKDIR /src

# 1) Dependencies only: the workspace manifests and the lock file, with stub sources for every
#    workspace member and path dependency, benches and examples included (cargo parses every
#    manifest of the workspace and fails on a named target without its file; tests/ has a
#    dev-dependency on sdk/). This layer (wasmtime, rdkafka/librdkafka, ...) is the slow one,
#    and it is rebuilt only when a manifest or Cargo.lock changes. If a member is added to the
#    workspace, copy its Cargo.toml and stub its targets here too.
COPY Cargo.toml Cargo.lock ./
COPY host/Cargo.toml host/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
COPY sdk/Cargo.toml sdk/Cargo.toml
COPY sdk/event/Cargo.toml sdk/event/Cargo.toml
RUN mkdir -p host/src host/benches tests/harness tests/e2e tests/benches sdk/src sdk/examples sdk/event/src \
 && echo 'fn main() {}' > host/src/main.rs \
 && touch host/src/lib.rs tests/harness/mod.rs tests/e2e/main.rs sdk/src/lib.rs sdk/event/src/lib.rs \
 && for member in host tests; do \
      sed -n '/^\[\[bench\]\]/{n;s/^name = "\(.*\)"/\1/p}' "$member/Cargo.toml" \
        | while read -r bench; do echo 'fn main() {}' > "$member/benches/$bench.rs"; done; done \
 && sed -n '/^\[\[example\]\]/{n;s/^name = "\(.*\)"/\1/p}' sdk/Cargo.toml \
      | while read -r example; do touch "sdk/examples/$example.rs"; done \
 && cargo build --release --locked -p cdc-host --bin cdc \
 && rm -rf host/src sdk target/release/cdc target/release/.fingerprint/cdc-host-* \
      target/release/.fingerprint/cdc-event-*

# 2) The real sources. Removing the stubs' fingerprints above forces cdc-host and cdc-event (the
#    event crate it shares with plugins, in sdk/event/) to be rebuilt
#    whatever the timestamps of the copied files are; the dependencies stay cached.
#    wit/ is the plugin interface the host binds to at compile time; host/build.rs embeds sdk/
#    (the guest SDK and the `cdc plugin new` template) and wit/ in the binary.
COPY wit wit
COPY sdk sdk
COPY host host
RUN cargo build --release --locked -p cdc-host --bin cdc \
 && install -D -m 0755 target/release/cdc /out/cdc

# ---------------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

# The release these labels describe: `docker build --build-arg VERSION=$(git describe) ...`.
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="cdc" \
      org.opencontainers.image.description="Change-data-capture host: Debezium/Kafka or embedded PostgreSQL in, sandboxed wasm transforms, sinks out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: TLS to brokers, webhooks, catalogs and object stores with the system roots.
# libssl3: librdkafka is built with OpenSSL (rdkafka's `ssl` feature, for Kafka TLS and SASL/SCRAM)
# and links it dynamically; zstd is compiled into librdkafka. libcurl4 is not installed: librdkafka
# is built without curl (rdkafka's `curl` feature is off), and zlib (libz.so.1) is already part of
# the base image. Unpinned for the reason given in the builder.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot and set fsGroup.
RUN groupadd --system --gid 10001 cdc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cdc --no-create-home \
      --shell /usr/sbin/nologin cdc \
 && install -d -m 0755 /config /opt/cdc/plugins \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/cdc

COPY --from=builder /out/cdc /usr/local/bin/cdc

# JSON log lines for log collectors; `human` reads better in a terminal.
ENV HOME=/var/lib/cdc \
    CDC_LOG_FORMAT=json
WORKDIR /var/lib/cdc
USER 10001:10001

# health_port (default 8080): /healthz, /readyz, /metrics.
EXPOSE 8080

# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (see helm/cdc), compose has its own
# (deploy/compose.yaml). `cdc` handles SIGTERM by draining and committing, so it runs as PID 1
# directly (exec form, no shell).
ENTRYPOINT ["cdc"]
CMD ["run", "/config/pipeline.yaml", "--platform-config", "/config/platform.yaml"]
