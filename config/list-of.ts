// A list field that can also be written as one string of comma-separated items, so that one
// environment variable sets it (`VOICE_EDGE_TRANSCEIVER_API__TOKENS="new,old"`). A missing or empty
// value (`tokens:` in YAML, an empty variable) is an empty list, which `min` may refuse with a
// message that says what to set.
import { z } from 'zod';

export const listOf = <T extends z.ZodType>(
  item: T,
  min?: { readonly count: number; readonly message: string },
) =>
  z.preprocess(
    (value) =>
      value === null || value === undefined
        ? []
        : typeof value === 'string'
          ? value
              .split(',')
              .map((part) => part.trim())
              .filter((part) => part !== '')
          : value,
    min === undefined ? z.array(item) : z.array(item).min(min.count, min.message),
  );
