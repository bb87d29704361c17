// A kubeconfig document for one cluster and one user (client certificate or bearer token).
import { stringify } from 'yaml';

export type KubeconfigCredentials =
  | { readonly certFile: string; readonly keyFile: string }
  | { readonly token: string };

export function kubeconfigDocument(options: {
  readonly server: string;
  readonly caFile: string;
  readonly user: string;
  readonly credentials: KubeconfigCredentials;
  readonly namespace?: string;
}): string {
  const user =
    'token' in options.credentials
      ? { token: options.credentials.token }
      : { 'client-certificate': options.credentials.certFile, 'client-key': options.credentials.keyFile };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'voice-edge-test',
        cluster: { server: options.server, 'certificate-authority': options.caFile },
      },
    ],
    users: [{ name: options.user, user }],
    contexts: [
      {
        name: 'voice-edge-test',
        context: {
          cluster: 'voice-edge-test',
          user: options.user,
          ...(options.namespace ? { namespace: options.namespace } : {}),
        },
      },
    ],
    'current-context': 'voice-edge-test',
  });
}
