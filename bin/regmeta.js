#!/usr/bin/env node
// The `regmeta` command: registers tsx so that the TypeScript sources run as
// they are, then hands the arguments to the CLI (src/cli/main.ts), which
// reports its own errors in one line and returns the exit code.
import { register } from 'tsx/esm/api';

try {
  register();
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Only a broken installation gets here (tsx or a source file missing).
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  process.stderr.write(`regmeta: cannot start: ${message} (hint: run 'npm install' in the regmeta checkout)\n`);
  process.exitCode = 70;
}
