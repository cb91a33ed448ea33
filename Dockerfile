# syntax=docker/dockerfile:1

# ---- builder: compiles the three binaries of the workspace ----
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The sqlx query macros read the committed .sqlx/ data instead of a live database.
ENV SQLX_OFFLINE=true
# The registry and target dir live in BuildKit caches (not in the image layers), so the
# binaries are copied out of the cached target dir while it is still mounted.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
 && mkdir -p /out/service /out/mock \
 && cp target/release/pg-catalog-sync target/release/pg-catalog-sync-worker /out/service/ \
 && cp target/release/mock-source /out/mock/

# ---- base: CA certificates and a non-root user ----
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001

# ---- mock-source: the test metadata service, an image of its own ----
# docker build --target mock-source -t pg-catalog-sync-mock-source .
FROM base AS mock-source
COPY --from=builder /out/mock/ /usr/local/bin/
EXPOSE 9090
CMD ["mock-source"]

# ---- the service (the default target): the API and the worker, no mock-source ----
FROM base AS service
COPY --from=builder /out/service/ /usr/local/bin/
EXPOSE 8080
# The API by default; `pg-catalog-sync-worker` runs a worker, `pg-catalog-sync migrate` the
# store's migrations.
CMD ["pg-catalog-sync"]
