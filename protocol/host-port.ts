// `host:port` text for anything that joins a host and a port: listen and bind addresses in
// configuration, URLs, log lines and error messages. An IPv6 literal needs brackets there
// (`[::1]:3478`, `http://[::1]:8080/`): written bare, `::1:3478` is itself an IPv6 address and
// names no port. protocol/address.ts parses the same form (parseTransportAddress).

/** `host` as it goes before `:port` or into a URL: an IPv6 literal in brackets, anything else as is. */
export function bracketHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** `1.2.3.4:5678`, `[::1]:5678` or `name:5678`: the form parseTransportAddress reads back. */
export function formatHostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`;
}

/** `http://[::1]:8080` and the like: a URL's origin for a host (IP literal or name) and a port. */
export function originOf(scheme: 'http' | 'https' | 'ws' | 'wss', host: string, port: number): string {
  return `${scheme}://${formatHostPort(host, port)}`;
}
