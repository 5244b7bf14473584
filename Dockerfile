# syntax=docker/dockerfile:1
#
# ferry's image: a static binary on distroless (CA certificates, no shell),
# running as a non-root user. The default (last) stage is the production
# image; the `dev` stage adds cmd/devstack and a shell for docker-compose.yml.
#
#   docker build -t ferry .
#   docker build --target dev -t ferry-dev .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build identity `ferry version` and ferry_build_info report; .git is
# not in the build context, so pass them:
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=dev
ARG REVISION=
# CGO off: a static binary that needs no libc in the runtime image.
RUN LDFLAGS="-s -w -X github.com/ferryworks/ferry/internal/buildinfo.version=${VERSION} -X github.com/ferryworks/ferry/internal/buildinfo.revision=${REVISION}" \
 && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="$LDFLAGS" -o /out/ferry ./cmd/ferry \
 && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="$LDFLAGS" -o /out/devstack ./cmd/devstack

# For docker-compose.yml only: the devstack and a worker that waits for it.
FROM busybox:1.37 AS dev
COPY --from=build /out/ferry /out/devstack /usr/local/bin/
COPY deploy/compose-wait.sh /usr/local/bin/compose-wait
# The shared volume inherits this ownership when compose creates it.
RUN mkdir -p /shared && chown 65532:65532 /shared
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/compose-wait"]
CMD ["ferry", "work"]

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Queue-driven workers that copy customers' S3 attachments into internal storage" \
      org.opencontainers.image.source="https://github.com/ferryworks/ferry" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ferry /usr/local/bin/ferry
# distroless's nonroot user; the Deployment also enforces runAsNonRoot.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["work"]
