// Synchronous clean-ups run when the test process exits without stopping what it started (a failed
// `before`, an uncaught error). They cannot wait: they SIGKILL and remove files. A process killed by a
// signal runs none of them; the testcluster binary then dies with its parent (PR_SET_PDEATHSIG), pods
// with setpriv --pdeathsig, and the next start sweeps leftover directories and network devices.
const cleanups = new Set<() => void>();
let installed = false;

export function addExitCleanup(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const run of [...cleanups].reverse()) {
        try {
          run();
        } catch {
          // best effort: the process is exiting
        }
      }
    });
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
