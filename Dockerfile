# syntax=docker/dockerfile:1
# Tessera IdP. Build: docker build -t tessera . ; all configuration comes from the environment (README).

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: skip `prepare` (it builds, and the sources are not here yet).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY examples ./examples
# The same build as `npm run build`, which also makes the CLI (dist/src/cli/main.js) executable.
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only; @node-rs/argon2's native binary comes as a prebuilt optional package.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# The demo users file, for docker-compose; mount your own and point USERS_FILE at it in production.
COPY examples/users.yml ./examples/users.yml
# The image's built-in unprivileged user.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/server.js"]
