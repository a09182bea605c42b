# shimmer in a container: built with the Rust toolchain, run on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p shimmer && cp target/release/shimmer /shimmer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /shimmer /usr/local/bin/shimmer
USER 65534:65534
EXPOSE 5000 8080
ENTRYPOINT ["/usr/local/bin/shimmer"]
CMD ["serve", "--config", "/etc/shimmer/shimmer.toml"]
