// Pod IPs from an IPv4 CIDR: the network and broadcast addresses and the reserved ones (the node's) are
// never handed out, and a released address is reused only after every other free one, so a new pod does
// not inherit a dead pod's conntrack entries or stale routing-table entries in tests.
export class Ipv4Pool {
  readonly #base: number;
  readonly #size: number;
  readonly #taken = new Set<number>();
  #next = 1;

  constructor(cidr: string, reserved: readonly string[] = []) {
    const [address, bits] = cidr.split('/');
    const prefix = Number(bits);
    if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new Error(`bad pod CIDR ${cidr}`);
    this.#size = 2 ** (32 - prefix);
    this.#base = (toNumber(address ?? '') & ~(this.#size - 1)) >>> 0;
    for (const ip of reserved) {
      const offset = toNumber(ip) - this.#base;
      if (offset > 0 && offset < this.#size - 1) this.#taken.add(offset);
    }
  }

  /** The next free address; throws when the range is exhausted. */
  allocate(): string {
    const usable = this.#size - 2;
    for (let tried = 0; tried < usable; tried++) {
      const offset = this.#next;
      this.#next = offset + 1 >= this.#size - 1 ? 1 : offset + 1;
      if (!this.#taken.has(offset)) {
        this.#taken.add(offset);
        return toAddress(this.#base + offset);
      }
    }
    throw new Error('pod CIDR exhausted');
  }

  release(ip: string): void {
    this.#taken.delete(toNumber(ip) - this.#base);
  }
}

function toNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`bad IPv4 address ${ip}`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function toAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
