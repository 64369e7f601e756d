# sockdiag_exporter container image.
#
# Build:  podman build -t sockdiag-exporter:0.1.0 .     (or docker build)
# Run:    see docs/kubernetes.md; the Helm chart is in helm/sockdiag-exporter.
#
# Stage 1 builds with Debian's -dev packages; stage 2 carries only the
# binary and the shared libraries it links (prometheus-cpp, CivetWeb, libmnl,
# OpenSSL for the TLS terminator, libyaml for the web config, libxcrypt).
#
# Privileges: the image runs as nobody (65534) and the binary carries no file
# capabilities. Sockets, sysctls and TCP counters need no capability at all.
# Conntrack needs CAP_NET_ADMIN and pods mode CAP_SYS_ADMIN + CAP_SYS_PTRACE;
# with allowPrivilegeEscalation=false (no_new_privs) file capabilities are
# never granted, and Kubernetes gives a non-root process no added capability,
# so those modes run as uid 0 with every other capability dropped (the Helm
# chart does this). tests/image/image_test.sh proves both profiles.

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
ARG REVISION=unknown
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        g++ cmake ninja-build pkg-config \
        prometheus-cpp-dev libcivetweb-dev libmnl-dev \
        libssl-dev libyaml-dev libcrypt-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY include/ include/
COPY src/ src/
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DSOCKDIAG_BUILD_BENCH=OFF -DSOCKDIAG_REVISION="${REVISION}" \
    && cmake --build /build \
    && install -D -m 0755 -s /build/src/sockdiag_exporter /out/sockdiag_exporter

FROM debian:${DEBIAN_RELEASE}-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sockdiag_exporter" \
      org.opencontainers.image.description="Prometheus exporter for TCP socket states, ephemeral-port pressure per destination, conntrack and the sysctls behind them" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libprometheus-cpp-pull1.0 libprometheus-cpp-core1.0 libcivetweb1 libmnl0 \
        libssl3 libyaml-0-2 libcrypt1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/sockdiag_exporter /usr/bin/sockdiag_exporter
USER 65534:65534
EXPOSE 10061
ENTRYPOINT ["/usr/bin/sockdiag_exporter"]
