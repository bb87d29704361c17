// A backend of the tests' own (a real WebSocket server speaking docs/backend-protocol.md): it queues
// seconds of tone for the caller at once, and obeys commands the caller sends on its data channel
// (`clear` → a barge-in `clear`, `close` → drop the WebSocket), so a test can trigger them mid-call.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { sine } from '../../audio/tone.ts';
import { decodeControl, encodeControl, SUBPROTOCOL } from '../../protocol/backend.ts';

export interface ScriptedBackend {
  readonly url: string;
  /** When each command was carried out (ms timestamps), by command. */
  readonly done: Map<string, number>;
  connections(): number;
  close(): Promise<void>;
}

export async function startScriptedBackend(options: {
  toneHz: number;
  toneMs: number;
}): Promise<ScriptedBackend> {
  const server = createServer();
  const wss = new WebSocketServer({ server, handleProtocols: () => SUBPROTOCOL });
  const done = new Map<string, number>();
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const decoded = decodeControl(data.toString(), 'to-backend');
      if (!decoded.ok) return;
      const message = decoded.message;
      if (message.type === 'start') {
        socket.send(sine(options.toneHz, message.audio.sampleRate, options.toneMs));
      } else if (message.type === 'datachannel' && typeof message.data === 'string') {
        if (message.data === 'clear') {
          socket.send(encodeControl({ type: 'clear' }));
          done.set('clear', Date.now());
        } else if (message.data === 'close') {
          done.set('close', Date.now());
          socket.close(1011, 'backend failure (scripted)');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    done,
    connections: () => wss.clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  };
}
