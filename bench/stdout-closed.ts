// Imported first by every bench that a user runs: a reader that goes away (`| head`) must not
// turn the next line printed into an uncaught EPIPE, which ends the bench with a stack trace
// before its cleanup (namespaces, cgroups, programs, temporary files) has run. The rest of the
// figures go nowhere, and the bench finishes and cleans up as it would have.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
});
