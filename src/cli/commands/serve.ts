// `regmeta serve`: the registry server, which lives in src/server and parses
// its own options (and --help).

import { Exit, type Command } from '../common.js';

export const serve: Command = {
  name: 'serve',
  usage: `usage: regmeta serve [--listen host:port] [--data <dir>] [...]

Runs the registry's HTTP server on the store until SIGINT or SIGTERM; see
'regmeta serve --help' for its options.

example:
  regmeta serve --listen 127.0.0.1:5000 --data ./data
`,
  async run(argv) {
    // Loaded here: the server's modules are no cost to the other commands.
    const { serve: runServer } = await import('../../server/main.js');
    const status = await runServer(argv);
    return typeof status === 'number' ? status : Exit.OK;
  },
};
