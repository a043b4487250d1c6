# warden: one static binary on a distroless base, running as a non-root user.
#
#   docker build -t warden .                      # the gateway (http, mcp connectors)
#   docker build --target sandbox -t warden:sandbox .   # plus bubblewrap, for exec connectors
#
# Kubernetes manifests that run it are in deploy/kubernetes (docs/deploy.md).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (modernc SQLite, pgx): no cgo, so the binary runs on a base with no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/warden ./cmd/warden

# The exec connector runs commands under bubblewrap; that needs a base with
# bwrap and a shell's worth of tools for the commands themselves.
FROM debian:12-slim AS sandbox
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent warden
COPY --from=build /out/warden /usr/local/bin/warden
USER 65532:65532
EXPOSE 7070 9090
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--addr", "0.0.0.0:7070", "--log-format", "json"]

# The default image: static, distroless, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot AS gateway
COPY --from=build /out/warden /usr/local/bin/warden
USER 65532:65532
EXPOSE 7070 9090
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--addr", "0.0.0.0:7070", "--log-format", "json"]
