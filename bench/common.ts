/**
 * What every bench/ script does the same way around its own measurement.
 *
 * Owns: the script's exit path (exit code, error report, stopping the processes the
 * compat-tests harness started). Must never measure anything itself or hide an error: a failed
 * run prints its stack and exits non-zero.
 */
import { stopAll } from '../compat-tests/harness.js';

/**
 * Runs a bench script's `main` (which answers its exit code) and sets the process's exit code.
 * On a throw: prints the stack, stops every process the harness started (so no server outlives
 * the run), and exits 1.
 */
export function runBench(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      await stopAll();
      process.exitCode = 1;
    },
  );
}
