# A Redis image for machines that cannot pull redis:7: the host's
# redis-server with the shared libraries ldd lists, on an empty base.
# build-local.sh prepares the context (rootfs/, data/). It runs like the official
# image's `redis-server ...` command: the binary is on PATH, /data is the
# working directory and is writable by the redis user (999).
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 data/ /data/
ENV PATH=/usr/local/bin
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["redis-server", "--dir", "/data"]
