/**
 * StorageError: the durable storage cannot go on (house style, error kind 2). Raised when the
 * files on disk are corrupt or incomplete at start, or when a write or fsync fails (disk full,
 * I/O error), after which the storage is fail-stop. Carries the file and byte offset when one is
 * to blame, so an operator knows what to restore.
 *
 * Owns only the error class. Must never import I/O.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  /** The file at fault, if any. */
  readonly file: string | null;
  /** The byte offset in `file` at fault, if any. */
  readonly offset: number | null;
  /** The errno code behind it (ENOSPC, EIO...), if any. */
  readonly code: string | null;

  constructor(
    message: string,
    where: { file?: string; offset?: number; code?: string; cause?: unknown } = {},
  ) {
    super(message, where.cause === undefined ? undefined : { cause: where.cause });
    this.file = where.file ?? null;
    this.offset = where.offset ?? null;
    this.code = where.code ?? null;
  }
}
