// The setup-time baseline: the same werift the transceiver runs, reached directly, with no relay,
// no signaling service, no backend. One process; `POST /calls` with an SDP offer answers it with a
// new RTCPeerConnection (ICE-lite like the transceiver, but on werift's own UDP socket on
// loopback: its host candidate is in the answer) that sends every RTP packet it receives straight
// back; `DELETE /calls/<id>` closes it. Prints `listening <port>` on stdout once ready.
//
//   node bench/transceiver/direct-endpoint.ts [--port 0]
import { createServer, type IncomingMessage } from 'node:http';
import { RTCPeerConnection, useOPUS } from 'werift';

const calls = new Map<string, RTCPeerConnection>();
let nextId = 1;

async function answer(offer: string): Promise<{ id: string; sdp: string }> {
  const pc = new RTCPeerConnection({
    iceLite: true,
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1', udp6: '::1' },
    iceServers: [],
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS()], video: [] },
  });
  const audio = pc.addTransceiver('audio', { direction: 'sendrecv' });
  audio.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      audio.sender.sendRtp(rtp).catch(() => {});
    });
  });
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') {
          unSubscribe();
          resolve();
        }
      });
    });
  }
  const id = String(nextId++);
  calls.set(id, pc);
  pc.connectionStateChange.subscribe((state) => {
    if (state === 'failed' || state === 'closed') calls.delete(id);
  });
  return { id, sdp: pc.localDescription!.sdp };
}

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const server = createServer((request, response) => {
  void (async () => {
    try {
      if (request.method === 'POST' && request.url === '/calls') {
        const { id, sdp } = await answer(await body(request));
        response.writeHead(201, { 'content-type': 'application/sdp', location: `/calls/${id}` });
        response.end(sdp);
        return;
      }
      const match = /^\/calls\/(\d+)$/.exec(request.url ?? '');
      if (request.method === 'DELETE' && match) {
        const pc = calls.get(match[1]!);
        calls.delete(match[1]!);
        await pc?.close().catch(() => {});
        response.writeHead(pc ? 204 : 404).end();
        return;
      }
      response.writeHead(404).end();
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    }
  })();
});

const portIndex = process.argv.indexOf('--port');
const port = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 0;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
});

const stop = () => {
  for (const pc of calls.values()) void pc.close().catch(() => {});
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
