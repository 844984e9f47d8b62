/**
 * The exit codes of `concord server`, so supervisors and scripts can tell why a node stopped.
 *
 * Owns only the numbers. Must never import anything: tests and scripts read it without
 * starting a server.
 */

/** Stopped cleanly (SIGTERM, SIGINT, SHUTDOWN). */
export const EXIT_OK = 0;

/** Any other failure: bad flags, a port in use, a corrupt data directory, a broken invariant. */
export const EXIT_FAILURE = 1;

/**
 * This node's log lost entries it had acknowledged (raft LostEntriesError): it refuses to run
 * until its data directory is wiped and it is re-added (docs/operations.md#replace-a-node).
 * Restarting it does not help: the data directory records the loss. 65 is sysexits' EX_DATAERR.
 */
export const EXIT_LOST_ENTRIES = 65;
