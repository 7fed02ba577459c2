# Bastion container image.
#
#   docker build -t bastion:0.1.0 .
#   docker run -d --name bastion --read-only -p 3000:3000 \
#     -v bastion-data:/data -v bastion-workspace:/workspace \
#     -e BASTION_AUTH=api-key bastion:0.1.0
#   docker exec bastion node dist/cli.js keys create --client cursor --scopes files:read,agent
#
# BASTION_AUTH=api-key (or oauth) is required: the image binds 0.0.0.0, and without authentication Bastion
# refuses any bind beyond loopback and exits. The container needs no writable path besides /data and
# /workspace, so it runs with a read-only root filesystem. See docs/deployment.md.

# Build stage: the same Debian release (bookworm) as the runtime stage, so better-sqlite3's prebuilt N-API
# addon, which ships inside its package, links against the same glibc.
FROM node:24.21.0-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No dependency's install script is needed to compile: none runs here (allowScripts in package.json).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed from the same lockfile.
FROM node:24.21.0-bookworm AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# No dependency needs an install script (package.json's allowScripts approves none): none runs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24.21.0-bookworm-slim AS runtime
ARG BASTION_VERSION=0.1.0
LABEL org.opencontainers.image.title="Bastion" \
      org.opencontainers.image.description="A production MCP server: a sandboxed workspace filesystem and a supervised agent, over Streamable HTTP and stdio." \
      org.opencontainers.image.version="${BASTION_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/bastion-mcp/bastion" \
      org.opencontainers.image.documentation="https://github.com/bastion-mcp/bastion/blob/main/docs/deployment.md" \
      org.opencontainers.image.base.name="docker.io/library/node:24.21.0-bookworm-slim"

# tini is PID 1: it forwards SIGTERM to Node (which drains, then exits) and reaps zombies. npm, npx and
# corepack are not needed at run time and are removed with their dependencies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && groupadd --system --gid 10001 bastion \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin bastion \
 && mkdir -p /data /workspace /audit \
 && chown 10001:10001 /data /workspace /audit \
 && chmod 0700 /data /audit

ENV NODE_ENV=production \
    BASTION_HOST=0.0.0.0 \
    BASTION_PORT=3000 \
    BASTION_DATA_DIR=/data \
    BASTION_WORKSPACE=/workspace

# The application is owned by root and read-only to the user that runs it.
WORKDIR /app
COPY package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist

USER 10001:10001
EXPOSE 3000
VOLUME ["/data", "/workspace"]

# The slim image has no curl: Node's fetch probes liveness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.BASTION_PORT||3000)+'/health/live').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["tini", "--", "node", "/app/dist/cli.js"]
CMD ["serve"]
