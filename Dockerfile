# One image for every voice-edge component (docs/kubernetes.md, docs/architecture.md):
#   docker run ghcr.io/voice-edge/voice-edge:<tag> relay|signaling|transceiver|operator|echo-agent [--config file]
# Node 24 runs the TypeScript sources directly (type stripping): there is no build step, only the
# production dependencies and the runtime folders. cli/dockerfile.test.ts checks this file's invariants.

# The same Node release the project runs on (package.json devDependencies "node").
FROM node:24.21.0-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# Dependencies exactly as locked; none of them needs an install script. The fixes of patches/ are
# applied to them (patch-package, a devDependency, hence the full install), then the devDependencies go.
RUN npm ci --ignore-scripts --no-audit --no-fund \
  && npx patch-package --error-on-fail \
  && npm prune --omit=dev --no-audit --no-fund \
  && npm cache clean --force

FROM node:24.21.0-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
# Every folder the components' code is loaded from (tests and test helpers are left out by .dockerignore).
COPY agents ./agents
COPY audio ./audio
COPY cli ./cli
COPY config ./config
COPY kube ./kube
COPY operator ./operator
COPY protocol ./protocol
COPY relay ./relay
COPY routing ./routing
COPY runtime ./runtime
COPY signaling ./signaling
COPY transceiver ./transceiver
COPY webrtc ./webrtc
# The image's `node` user, by number so that Kubernetes can verify runAsNonRoot. The files above
# belong to root: the process can read them and change none.
USER 1000:1000
ENTRYPOINT ["node", "cli/voice-edge.ts"]
CMD ["--help"]
