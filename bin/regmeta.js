#!/usr/bin/env node
// The `regmeta` command: hands the arguments to the compiled CLI
// (dist/cli/main.js), which reports its own errors in one line and returns
// the exit code. One node process, nothing in between.
try {
  const { main } = await import('../dist/cli/main.js');
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Only a broken installation gets here (dist/ not built, or a file missing).
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  process.stderr.write(`regmeta: cannot start: ${message} (hint: in a checkout, run 'npm install', which builds dist/)\n`);
  process.exitCode = 70;
}
