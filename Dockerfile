# syntax=docker/dockerfile:1
# Tessera IdP. Build: docker build -t tessera . ; all configuration comes from the environment (README).
# Behind a TLS-inspecting proxy, hand npm the proxy's CA for the build only (never stored in a layer):
#   docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t tessera .

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: skip `prepare` (it builds, and the sources are not here yet).
RUN --mount=type=secret,id=npm_ca \
    NODE_EXTRA_CA_CERTS="$(test -f /run/secrets/npm_ca && echo /run/secrets/npm_ca)" \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY examples ./examples
# The same build as `npm run build`, which also makes the CLI (dist/src/cli/main.js) executable.
RUN npm run build

FROM node:24-slim
LABEL org.opencontainers.image.title="Tessera IdP" \
      org.opencontainers.image.description="Cross-domain single sign-on for Fastify apps: the IdP (and the example app)." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24-slim"
# HOST and GATE_HOST: all of the container's addresses, so that a proxy or a browser in front of it
# (another container, a published port) reaches the IdP or the gate; outside a container both default
# to 127.0.0.1.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    GATE_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only; @node-rs/argon2's native binary comes as a prebuilt optional package.
# `tessera` becomes a command: on the PATH, and in node_modules/.bin for `npx tessera`. package.json
# loses its `bin`, since npm 11's npx, finding the command in the project's own `bin`, installs the
# project into its cache and runs its `prepare`; and every script but `start`, since `build` starts
# with `rm -rf dist` and there is no compiler here to make it again. npm's logs and Node's compile
# cache from this step are not left in the layer.
RUN --mount=type=secret,id=npm_ca \
    NODE_EXTRA_CA_CERTS="$(test -f /run/secrets/npm_ca && echo /run/secrets/npm_ca)" \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
 && node -e "const fs = require('fs'); const p = JSON.parse(fs.readFileSync('package.json', 'utf8')); delete p.bin; p.scripts = { start: p.scripts.start }; fs.writeFileSync('package.json', JSON.stringify(p, null, 2) + '\\n')" \
 && mkdir -p node_modules/.bin && ln -s ../../dist/src/cli/main.js node_modules/.bin/tessera \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/tessera \
 && rm -rf /root/.npm /tmp/node-compile-cache
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# The demo users file, for docker-compose; mount your own and point USERS_FILE at it in production.
COPY examples/users.yml ./examples/users.yml
# The image's built-in unprivileged user (uid 1000).
USER node
# 3000: the IdP (PORT); 9091: the forward-auth gate (`tessera gate`, GATE_PORT).
EXPOSE 3000 9091
# Asks /healthz of whichever process the container runs, on its own port (PORT, or GATE_PORT for the gate).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "dist/src/cli/healthcheck.js"]
# The same command as `npm start`. A 4 MB semi-space caps V8's young generation (the default grows
# it to 32 MB per semi-space under load): the IdP's RSS after the hand-over bench fell from about
# 170 to 113 MB, at no CPU cost the bench could measure (bench/README.md, issue 17).
CMD ["node", "--max-semi-space-size=4", "--no-maglev", "dist/src/server.js"]
