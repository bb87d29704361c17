// The whole edge in one process, on embedded defaults, for a laptop: the echo agent, one
// transceiver, the relay and signaling, with a fresh routing key. Each part runs the same code as in
// a cluster; the routing table and the keys are files in a private temporary folder, so the relay
// and signaling read them exactly as they read a ConfigMap and a Secret.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import { startEchoAgent } from '../agents/echo/echo-agent.ts';
import { formatHostPort, originOf } from '../protocol/host-port.ts';
import { RelayConfigSchema } from '../relay/config.ts';
import { startRelay } from '../relay/relay.ts';
import { SignalingConfigSchema } from '../signaling/config.ts';
import { startSignaling } from '../signaling/signaling.ts';
import type { BackendProtocol } from '../transceiver/backend-wire.ts';
import { TransceiverConfigSchema } from '../transceiver/config.ts';
import { startTransceiver } from '../transceiver/service.ts';
import { freeUdpPort } from './free-port.ts';
import { relayConfig, routingTable, signalingConfig, transceiverConfig } from './topology.ts';

/** The voice-edge protocol's PCM16 rate when none is given. */
const DEFAULT_SAMPLE_RATE = 16000;

export interface LocalEdgeOptions {
  /** Where everything listens; 127.0.0.1 keeps the edge on this machine. */
  readonly host: string;
  /** WHIP endpoint and demo page. */
  readonly httpPort: number;
  /**
   * The relay's public port: the only address clients send media to, over UDP, or over TCP (ICE-TCP)
   * where their network blocks UDP; the same number for both.
   */
  readonly relayPort: number;
  readonly echoDelayMs: number;
  /** PCM16 rate of the voice-edge protocol; with twilio-media-streams 8000 or left out. */
  readonly sampleRate?: 8000 | 12000 | 16000 | 24000 | 48000;
  /** What the backend speaks (docs/backend-protocol.md); default voice-edge. */
  readonly backendProtocol?: BackendProtocol;
  /**
   * The backend (ws:// or wss://) instead of the bundled echo agent, which speaks voice-edge only:
   * required with twilio-media-streams.
   */
  readonly backendUrl?: string;
}

export interface LocalEdge {
  readonly url: string;
  readonly whipUrl: string;
  shutdown(): Promise<void>;
}

export async function startLocalEdge(options: LocalEdgeOptions, logger: Logger): Promise<LocalEdge> {
  const protocol = options.backendProtocol ?? 'voice-edge';
  if (protocol !== 'voice-edge' && options.backendUrl === undefined) {
    throw new Error(`${protocol} needs a backend URL: the bundled echo agent speaks voice-edge only`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'voice-edge-local-'));
  const stops: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const shutdown = async () => {
    for (const stop of stops.reverse())
      await stop().catch((error: Error) => logger.warn({ err: error.message }, 'stop failed'));
  };
  try {
    const keysFile = join(dir, 'keys.yaml');
    writeFileSync(keysFile, stringify({ keys: [{ id: 1, secret: randomBytes(32).toString('base64') }] }));
    chmodSync(keysFile, 0o600);
    const host = options.host;
    const relay = formatHostPort(host, options.relayPort);
    // The transceiver's internal API takes a bearer token; this process is its only caller, so a
    // fresh one per start, known to no one else and never printed, is all it needs.
    const apiToken = randomBytes(32).toString('base64url');

    let backendUrl = options.backendUrl;
    if (backendUrl === undefined) {
      const echo = await startEchoAgent({
        host,
        port: 0,
        delayMs: options.echoDelayMs,
        logger: logger.child({ part: 'echo' }),
      });
      stops.push(() => echo.close());
      backendUrl = originOf('ws', host, echo.port);
    }

    const tunnelPort = await freeUdpPort(host);
    const tunnel = formatHostPort(host, tunnelPort);
    const transceiver = await startTransceiver(
      TransceiverConfigSchema.parse(
        transceiverConfig({
          clusterId: 1,
          transceiverId: 1,
          tunnel,
          // The relay runs in this process and sends from `host` (or loopback when `host` is a wildcard).
          allowedRelays: relaySourcesFor(host),
          relays: [relay],
          tcpRelays: [relay],
          keysFile,
          backend: {
            url: backendUrl,
            protocol,
            sampleRate: options.sampleRate ?? (protocol === 'voice-edge' ? DEFAULT_SAMPLE_RATE : undefined),
          },
          api: { host, port: 0, token: apiToken },
          graceMs: 0,
        }),
      ),
      logger.child({ part: 'transceiver' }),
    );
    stops.push(() => transceiver.shutdown(0));

    const routingFile = join(dir, 'routing.yaml');
    writeFileSync(
      routingFile,
      stringify(routingTable(1, 1, [{ id: 1, tunnel, state: 'active', api: transceiver.apiUrl }])),
    );

    const relayConfigured = RelayConfigSchema.parse({
      ...relayConfig({
        clusterId: 1,
        listen: relay,
        tcpListen: [relay],
        routingFile,
        keysFile,
        http: { host, port: 0 },
      }),
      // The tunnel sockets on `host` too: the default 0.0.0.0 would open them on every interface.
      tunnel: relayTunnelBind(host),
    });
    const relayHandle = await startRelay(
      { ...relayConfigured, workerCount: 1 },
      logger.child({ part: 'relay' }),
    );
    stops.push(() => relayHandle.shutdown());

    const signaling = await startSignaling(
      SignalingConfigSchema.parse(
        signalingConfig({
          http: { host, port: options.httpPort },
          ops: { host, port: 0 },
          routingFile,
          relays: [relay],
          tcpRelays: [relay],
          apiToken,
        }),
      ),
      logger.child({ part: 'signaling' }),
    );
    stops.push(() => signaling.shutdown());

    const base = originOf('http', host, signaling.httpPort);
    return { url: `${base}/`, whipUrl: `${base}/whip`, shutdown };
  } catch (error) {
    await shutdown();
    throw error;
  }
}

/** Where the local relay's tunnel datagrams come from: `host`, or loopback for a wildcard host. */
export function relaySourcesFor(host: string): string[] {
  if (host === '0.0.0.0') return ['127.0.0.0/8'];
  if (host === '::') return ['::1', '127.0.0.0/8'];
  return [host];
}

/**
 * The relay's tunnel sockets for a local edge on `host`: that address itself, not the default
 * 0.0.0.0. The relay always binds an IPv4 tunnel socket (loopback for an IPv6 host, every interface
 * only when `host` is the IPv6 wildcard); an IPv6 host adds the IPv6 one, on `host`, through which
 * the relay reaches the transceiver listening there.
 */
export function relayTunnelBind(host: string): { bindV4: string; bindV6?: string } {
  if (!host.includes(':')) return { bindV4: host };
  return { bindV4: host === '::' ? '0.0.0.0' : '127.0.0.1', bindV6: host };
}
