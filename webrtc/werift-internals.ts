// The guard in front of every use of werift's private members (docs/transceiver.md): the
// transceiver's tunnel adapter and the callers' RTCP figures check what they rely on first, so that
// a werift upgrade that renames or drops one fails loudly, naming it, instead of misbehaving.

export class WeriftInternalsChanged extends Error {
  override name = 'WeriftInternalsChanged';
}

/** What a member must be: a value of that `typeof`, or (`present`) declared at all, even undefined. */
export type MemberKind = 'string' | 'number' | 'function' | 'present';

/** Throws WeriftInternalsChanged naming every member of `expected` that `value` (werift's `what`) lacks. */
export function assertWeriftMembers(
  value: unknown,
  what: string,
  expected: Readonly<Record<string, MemberKind>>,
): void {
  const object = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const problems = Object.entries(expected)
    .filter(([name, kind]) => (kind === 'present' ? !(name in object) : typeof object[name] !== kind))
    .map(([name]) => name);
  if (problems.length > 0)
    throw new WeriftInternalsChanged(`werift's ${what} no longer has: ${problems.join(', ')}`);
}
