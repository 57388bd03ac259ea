# Tessera's image: the compiled binary alone (`bun run build`: migrations, Lua scripts and Swagger
# UI embedded), on distroless/cc (glibc and libgcc_s, which the embedded argon2 addon needs), as a
# non-root user. The build stage is Debian too, so it installs the glibc build of that addon for
# the same architecture. Commands: `serve` (the default), `migrate`, `audit`, `admin ...`.

FROM oven/bun:1.4.4 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml ./
RUN bun install --frozen-lockfile --production
COPY scripts/build.ts scripts/build.ts
COPY drizzle drizzle
COPY src src
RUN bun scripts/build.ts --outfile /out/tessera

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tessera /usr/local/bin/tessera
# Production rules apply (src/config.ts): DATABASE_URL, REDIS_URL and ADMIN_PASSWORD must be given,
# and `serve` runs only against a database `tessera migrate` has migrated (or MIGRATE_ON_BOOT=true).
ENV NODE_ENV=production
EXPOSE 3000
# distroless's nonroot user (65532). At start the binary writes its argon2 addon to /tmp and loads
# it from there: a read-only root filesystem needs a writable /tmp that allows exec.
USER nonroot
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/tessera", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
