#!/usr/bin/env node
// The `regmeta` command: registers tsx so that the TypeScript sources run as
// they are, then hands the arguments to the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
