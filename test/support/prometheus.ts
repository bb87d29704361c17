// Reads the Prometheus text format well enough to check one sample in a test.
export type Samples = Map<string, number>;

export function parsePrometheus(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The value of `name{labels}` (labels in the order the exporter writes them), 0 when absent. */
export function sample(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const entries = Object.entries(labels);
  const key = entries.length === 0 ? name : `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  return samples.get(key) ?? 0;
}
