# regent's container image, for those with Docker (or any BuildKit builder):
#
#   docker build -t ghcr.io/regent-sched/regent:0.1.0 .
#   docker build --build-arg VERSION=0.1.1 -t ghcr.io/regent-sched/regent:0.1.1 .
#
# The same image as `make image` builds offline (deploy/image; a test keeps the two alike): a
# static binary on scratch, run as the non-root user 65532, with the build stage's CA certificates.
# VERSION defaults to the chart's appVersion, as in `make image`.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN v="${VERSION:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/regent/Chart.yaml)}" && \
    CGO_ENABLED=0 go build -buildvcs=false -ldflags "-s -w -X main.version=${v}" -o /out/usr/local/bin/regent ./cmd/regent && \
    mkdir -p /out/etc/ssl/certs /out/tmp /out/home/nonroot && \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ && \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd && \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group && \
    chmod 1777 /out/tmp && chown 65532:65532 /out/home/nonroot && chmod 0700 /out/home/nonroot

FROM scratch
COPY --from=build /out/ /
LABEL org.opencontainers.image.title=regent org.opencontainers.image.source=https://github.com/regent-sched/regent
USER 65532:65532
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/regent"]
CMD ["run"]
