/**
 * Named errors. Across comlink only `name` and `message` survive, so callers check `err.name`
 * (never `instanceof`), and every message says what was wrong, with the value, and what to do.
 */

/**
 * Base class. Each subclass spells its `name` out: minifiers rename classes, and the name is what
 * survives structured cloning.
 */
export class LabError extends Error {
  override name = 'LabError';
}

/** A file that is not in the format it claims (truncated, corrupt, wrong layout). */
export class DatasetFormatError extends LabError {
  override name = 'DatasetFormatError';
}

/** A user-supplied option or value that is out of range or unknown. */
export class InvalidOptionError extends LabError {
  override name = 'InvalidOptionError';
}

/** Not enough storage for a write; says how much was needed and how much is free. */
export class QuotaError extends LabError {
  override name = 'QuotaError';
}

/** The user cancelled a long operation. */
export class CancelledError extends LabError {
  override name = 'CancelledError';
}

/** A stored dataset, run or checkpoint that does not exist (any more). */
export class NotFoundError extends LabError {
  override name = 'NotFoundError';
}

/** No compute backend can run here (every one failed); says why each failed. */
export class BackendUnavailableError extends LabError {
  override name = 'BackendUnavailableError';
}

/** Error name and message, also for values thrown that are not Errors. */
export function describeError(err: unknown): { name: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  if (typeof err === 'object' && err !== null && 'message' in err) {
    const e = err as { name?: unknown; message: unknown };
    return { name: typeof e.name === 'string' ? e.name : 'Error', message: String(e.message) };
  }
  return { name: 'Error', message: String(err) };
}
