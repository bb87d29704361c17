// Shared by the relay's and the signaling service's configuration: the error every config problem
// becomes, and environment overrides of YAML fields (`<PREFIX><FIELD>[__<FIELD>…]`).
import { isIPv6 } from 'node:net';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { formatIssues } from '../protocol/schema.ts';

/** A configuration problem a person can act on; `main` prints it and exits with status 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * `[ipv6]:port` (`[fd00::9]:7000`): YAML would read the brackets as a list and fail on `:7000`, so a
 * value of this form is taken as the address text it is, unquoted like its IPv4 twin. So is a bare
 * IPv6 address, which YAML may read as a mapping (`::` is `{ ":": null }`).
 */
const BRACKETED_ADDRESS = /^\[[0-9A-Za-z:.%-]+\]:\d{1,5}$/;
const isAddressText = (value: string) => BRACKETED_ADDRESS.test(value) || isIPv6(value);

/**
 * `<prefix><FIELD>[__<FIELD>…]` overrides a field; names are SCREAMING_SNAKE forms of the YAML keys
 * (`FLOWS__MAX_FLOWS` → `flows.maxFlows`) and values are read as YAML scalars or flow collections
 * (`'["0.0.0.0:3478"]'`, `'{ host: "::1" }'`), but for an IPv6 address, bare or bracketed with its
 * port, which is text as it stands (`::`, `[::1]:7000`). Variables without the prefix are ignored; the input
 * is not modified. Descending into a field that is set to a non-object is a ConfigError naming the
 * variable.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  prefix: string,
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(prefix) || value === undefined) continue;
    const path = name
      .slice(prefix.length)
      .split('__')
      .map((part) => part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
    let target: Record<string, unknown> = out;
    for (const segment of path.slice(0, -1)) {
      const next = target[segment];
      if (next === undefined || next === null) target[segment] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) {
        throw new ConfigError(`${name}: ${path.join('.')} cannot be set inside a non-object field`);
      }
      target = target[segment] as Record<string, unknown>;
    }
    try {
      target[path[path.length - 1]!] = isAddressText(value) ? value : parseYaml(value);
    } catch (error) {
      throw new ConfigError(`${name}: not a valid YAML value: ${(error as Error).message}`);
    }
  }
  return out;
}

/**
 * The variable that sets the field at `path`: `['flows', 'maxFlows']` → `<prefix>FLOWS__MAX_FLOWS`.
 * A path into a list stops at the list (a list is set whole, as one YAML flow sequence).
 */
export function envVariableFor(prefix: string, path: readonly PropertyKey[]): string {
  const fields: string[] = [];
  for (const segment of path) {
    if (typeof segment !== 'string') break;
    fields.push(segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());
  }
  return `${prefix}${fields.join('__')}`;
}

/**
 * One ConfigError for a schema failure, naming every field. Read from a file, it names the file;
 * with no file (a pod configured by its environment alone) it names, for each field, the variable
 * that sets it.
 */
export function invalidConfigError(
  component: string,
  file: string | undefined,
  prefix: string,
  error: z.ZodError,
): ConfigError {
  if (file !== undefined)
    return new ConfigError(`invalid ${component} config ${file}: ${formatIssues(error)}`);
  const issues = error.issues
    .map((issue) => {
      const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      // A missing section is set field by field: point below it.
      const below = issue.code === 'invalid_type' && issue.expected === 'object' ? '__…' : '';
      const variable = issue.path.length > 0 ? ` (${envVariableFor(prefix, issue.path)}${below})` : '';
      return `${field}: ${issue.message}${variable}`;
    })
    .join('; ');
  return new ConfigError(
    `invalid ${component} config (no --config file: ${prefix}* variables only): ${issues}`,
  );
}

/** The words that say where a configuration came from, for errors raised after the schema. */
export function configOrigin(file: string | undefined, prefix: string): string {
  return file ?? `(no --config file: ${prefix}* variables only)`;
}
