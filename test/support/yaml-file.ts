// The harnesses write each service's config as a YAML file in their own temporary directory.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Writes `content` as YAML to `dir`/`name`; returns the file's path. */
export function writeYaml(dir: string, name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(content));
  return file;
}
