# hqd in a container: the PWA built with Node, a static Go binary for the
# target platform (linux/arm64 or linux/amd64), a minimal non-root runtime.
#   docker buildx build --platform linux/arm64,linux/amd64 -t hqd .
# syntax=docker/dockerfile:1

FROM --platform=$BUILDPLATFORM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=web /src/web/dist/ internal/web/dist/
# The job helper first, for the same platform: hqd embeds it (make helper).
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" \
      -o internal/lake/helper/hqd-job-exec ./cmd/hqd-job-exec && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/quantapix/hqd/internal/version.Version=$VERSION" -o /out/hqd ./cmd/hqd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hqd /usr/local/bin/hqd
USER nonroot:nonroot
ENV HQD_ADDR=:8080 HQD_DATA_DIR=/var/lib/hqd HQD_METRICS_ADDR=:9100
VOLUME /var/lib/hqd
EXPOSE 8080 9100
ENTRYPOINT ["/usr/local/bin/hqd"]
CMD ["serve"]
