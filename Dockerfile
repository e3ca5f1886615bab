# The production image: one static-ish binary with the dashboard built in.
#   docker build -t hubbub .
#   docker run -p 8080:8080 hubbub
# Docker's default seccomp profile may refuse io_uring; hubbub then runs on epoll and
# says so in its start-up log.

FROM node:20-bookworm-slim AS dashboard
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=dashboard /src/frontend/dist frontend/dist
RUN cargo build --release --locked -p hubbub-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates wget \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hubbub \
    && mkdir -p /data/search /data/files && chown hubbub /data/search /data/files
COPY --from=build /src/target/release/hubbub /usr/local/bin/hubbub
USER hubbub
ENV PORT=8080 BIND=0.0.0.0 LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD wget -qO- http://127.0.0.1:8080/health >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/hubbub"]
