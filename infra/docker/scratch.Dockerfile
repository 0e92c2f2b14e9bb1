# The roomstream image built from a binary compiled outside Docker
# (CGO_ENABLED=0), for machines that cannot pull golang:*. The result is
# the same as Dockerfile's: the binary on an empty base, non-root.
# build-local.sh prepares the context (roomstream, etc/ssl/certs).
FROM scratch
COPY etc/ /etc/
COPY roomstream /roomstream
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/roomstream"]
CMD ["connector"]
