// Reading a YAML configuration file into a mapping, with one ConfigError per way it can fail.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './env-overrides.ts';

/** The file's top-level YAML mapping; a ConfigError if it is unreadable, not YAML, or not a mapping. */
export function readConfigMapping(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config file ${file} must hold a YAML mapping`);
  }
  return raw as Record<string, unknown>;
}
