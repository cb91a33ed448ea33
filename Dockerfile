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
 && mkdir -p /out \
 && cp target/release/pg-catalog-sync \
       target/release/pg-catalog-sync-worker \
       target/release/mock-source /out/

# ---- runtime: the binaries, CA certificates and a non-root user ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /out/ /usr/local/bin/
USER app
EXPOSE 8080
# The same image runs the API (default), `pg-catalog-sync-worker` and `mock-source`.
CMD ["pg-catalog-sync"]
