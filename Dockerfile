# syntax=docker/dockerfile:1
#
# One image per binary: a static Go build (CGO_ENABLED=0, -trimpath, version via -ldflags) on
# distroless static:nonroot, running as nonroot (uid/gid 65532, as the manifests expect).
#   docker build --target usher          --build-arg VERSION=v0.1.0 -t usher:dev .
#   docker build --target gdsdk-bridge   -t gdsdk-bridge:dev .
#   docker build --target example-server -t example-server:dev .
# `go tool task image` builds all three. BuildKit builds only the stages a target needs.

ARG GO_VERSION=1.26.10
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# Module downloads first, so a source change does not refetch them.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ENV GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    LDFLAGS="-s -w -X github.com/usher-gg/usher/internal/version.Version=${VERSION}"

FROM build AS build-usher
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "${LDFLAGS}" -o /out/usher ./cmd/usher

FROM build AS build-gdsdk-bridge
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "${LDFLAGS}" -o /out/gdsdk-bridge ./gdsdk-bridge

FROM build AS build-example-server
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "${LDFLAGS}" -o /out/example-server ./cmd/example-server

# The Agones sidecar beside each game server (bridge protocol on 127.0.0.1:9359).
FROM ${RUNTIME_IMAGE} AS gdsdk-bridge
COPY --from=build-gdsdk-bridge /out/gdsdk-bridge /gdsdk-bridge
USER nonroot:nonroot
ENTRYPOINT ["/gdsdk-bridge"]

# The example game server (WebSockets on $USHER_PORT).
FROM ${RUNTIME_IMAGE} AS example-server
COPY --from=build-example-server /out/example-server /example-server
USER nonroot:nonroot
ENTRYPOINT ["/example-server"]

# The matchmaker; last, so it is also the default target. The manifests pass `serve --config …`.
FROM ${RUNTIME_IMAGE} AS usher
COPY --from=build-usher /out/usher /usher
USER nonroot:nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/usher"]
