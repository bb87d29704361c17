// Test-only "image" of the test kubelet (voice-edge/test-udp-echo): a UDP echo with an HTTP side, so
// tests can check what the kubelet did for a pod from the outside. UDP: every datagram comes back
// unchanged, except `env?`, answered with the process environment as JSON. HTTP: GET /healthz → ok,
// GET /env → the environment as JSON. Usage: udp-echo.ts [--udp-port 5000] [--http-port 8080]
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'udp-port': { type: 'string', default: '5000' },
    'http-port': { type: 'string', default: '8080' },
  },
});
const udpPort = Number(values['udp-port']);
const httpPort = Number(values['http-port']);
if (!Number.isInteger(udpPort) || !Number.isInteger(httpPort)) {
  process.stderr.write('udp-echo: --udp-port and --http-port must be integers\n');
  process.exit(2);
}

const environment = () => Buffer.from(JSON.stringify(process.env));
const udp = createSocket('udp4');
udp.on('message', (data, from) => {
  const reply = data.toString('utf8') === 'env?' ? environment() : data;
  udp.send(reply, from.port, from.address);
});
udp.on('error', (error) => process.stderr.write(`udp-echo: ${error.message}\n`));
udp.bind(udpPort, '0.0.0.0');

const http = createServer((req, res) => {
  if (req.url === '/healthz') res.end('ok\n');
  else if (req.url === '/env') res.setHeader('content-type', 'application/json').end(environment());
  else res.writeHead(404).end();
});
http.listen(httpPort, '0.0.0.0', () => {
  process.stdout.write(`udp-echo: udp ${udpPort}, http ${httpPort}\n`);
});

process.once('SIGTERM', () => {
  process.stdout.write('udp-echo: SIGTERM, stopping\n');
  udp.close();
  http.close(() => process.exit(0));
  http.closeAllConnections();
});
