// The test cluster's certificates: one throw-away CA that signs the API server's serving certificate and
// every client certificate (the API server trusts it with --client-ca-file, so a certificate's CN is the
// user and its O entries the groups), plus the ServiceAccount token signing key. X.509 creation needs the
// openssl CLI (Node's crypto can make keys but not certificates); ECDSA P-256 keeps each call ~10 ms.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssuedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface CertificateRequest {
  /** Files are written as <dir>/<name>.crt and <name>.key. */
  readonly name: string;
  readonly commonName: string;
  /** Subject O entries: Kubernetes groups for a client certificate. */
  readonly organizations?: readonly string[];
  readonly usage: 'server' | 'client';
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

const validity = ['-days', '7'];
const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function createCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const ca = { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  await openssl([
    'req',
    '-x509',
    ...ecKey,
    ...validity,
    '-subj',
    '/CN=voice-edge-test-cluster-ca',
    '-keyout',
    ca.keyFile,
    '-out',
    ca.certFile,
  ]);
  return ca;
}

export async function issueCertificate(
  ca: CertificateAuthority,
  dir: string,
  request: CertificateRequest,
): Promise<IssuedCertificate> {
  const issued = { certFile: join(dir, `${request.name}.crt`), keyFile: join(dir, `${request.name}.key`) };
  const subject = [
    ...(request.organizations ?? []).map((o) => `/O=${escapeRdn(o)}`),
    `/CN=${escapeRdn(request.commonName)}`,
  ];
  const altNames = [
    ...(request.dnsNames ?? []).map((name) => `DNS:${name}`),
    ...(request.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ];
  await openssl([
    'req',
    '-x509',
    ...ecKey,
    ...validity,
    '-subj',
    subject.join(''),
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    // req -x509 would otherwise mark the certificate as a CA (v3_ca in openssl.cnf).
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature',
    '-addext',
    `extendedKeyUsage=${request.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(altNames.length > 0 ? ['-addext', `subjectAltName=${altNames.join(',')}`] : []),
    '-keyout',
    issued.keyFile,
    '-out',
    issued.certFile,
  ]);
  return issued;
}

/** The ServiceAccount token issuer's key pair (ES256), as PEM files. */
export async function createServiceAccountKeys(
  dir: string,
): Promise<{ privateKeyFile: string; publicKeyFile: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privateKeyFile = join(dir, 'sa.key');
  const publicKeyFile = join(dir, 'sa.pub');
  await writeFile(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateKeyFile, publicKeyFile };
}

function escapeRdn(value: string): string {
  // openssl -subj separates RDNs with '/', so a literal one (or backslash) is escaped.
  return value.replace(/[\\/]/g, (c) => `\\${c}`);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error('test cluster PKI: the openssl CLI is missing; install it: apt-get install openssl');
    }
    throw new Error(
      `test cluster PKI: openssl ${args[0]} failed: ${failure.stderr?.trim() || failure.message}`,
    );
  }
}
