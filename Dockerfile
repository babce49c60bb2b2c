# hqd in a container: the PWA built with Node, a static Go binary for the
# target platform (linux/arm64 or linux/amd64), a minimal non-root runtime.
#   docker buildx build --platform linux/arm64,linux/amd64 -t hqd .
# make test-image builds the runtime stage from the binary `make build`
# made (--build-arg HQD_BIN=prebuilt, the context a folder with just that
# binary) and runs it: the stage under test is this one, not a copy.
# syntax=docker/dockerfile:1

# Where the runtime takes /out/hqd from: "build" (below) or "prebuilt".
ARG HQD_BIN=build

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
      -ldflags "-s -w -X github.com/quantapix/hqd/internal/version.Version=$VERSION" -o /out/hqd ./cmd/hqd && \
    mkdir -m 0700 -p /out/state

# A binary built elsewhere (make build), the build context holding only it.
FROM scratch AS prebuilt
COPY hqd /out/hqd
COPY state/ /out/state/

FROM ${HQD_BIN} AS bin

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=bin /out/hqd /usr/local/bin/hqd
# The state directory must exist and belong to the runtime user (65532,
# "nonroot"): distroless has no /var/lib/hqd, and hqd cannot make it.
COPY --from=bin --chown=65532:65532 /out/state/ /var/lib/hqd/
USER 65532:65532
ENV HQD_ADDR=:8080 HQD_DATA_DIR=/var/lib/hqd HQD_METRICS_ADDR=:9100
VOLUME /var/lib/hqd
EXPOSE 8080 9100
ENTRYPOINT ["/usr/local/bin/hqd"]
CMD ["serve"]
