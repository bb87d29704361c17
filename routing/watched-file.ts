// A file whose content is followed: fs.watch on its folder (so atomic renames and Kubernetes'
// ConfigMap/Secret symlink swaps are seen) plus a slow poll as a fallback for filesystems where
// watching is unreliable. The callback runs only when the content actually changed.
import { type FSWatcher, watch as watchFolder } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface WatchedFileOptions {
  readonly pollMs?: number;
  readonly debounceMs?: number;
}

export class WatchedFile {
  readonly path: string;
  #last: string | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reading = false;
  #closed = false;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads the file once now (rejects if unreadable), then follows it. */
  async start(
    onChange: (text: string) => void,
    onError: (error: Error) => void,
    options: WatchedFileOptions = {},
  ): Promise<string> {
    const text = await readFile(this.path, 'utf8');
    this.#last = text;
    const debounceMs = options.debounceMs ?? 50;
    const check = () => {
      if (this.#reading || this.#closed) return;
      this.#reading = true;
      readFile(this.path, 'utf8')
        .then(
          (next) => {
            if (this.#closed || next === this.#last) return;
            this.#last = next;
            onChange(next);
          },
          (error: Error) => {
            // A read in flight when close() was called must not report afterwards either.
            if (!this.#closed) onError(error);
          },
        )
        .finally(() => {
          this.#reading = false;
        });
    };
    const name = basename(this.path);
    try {
      this.#watcher = watchFolder(dirname(this.path), (_event, changed) => {
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(check, debounceMs);
      });
      this.#watcher.on('error', onError);
    } catch (error) {
      onError(error as Error);
    }
    this.#poll = setInterval(check, options.pollMs ?? 5_000);
    this.#poll.unref();
    return text;
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }
}
