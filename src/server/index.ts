// The registry server's door (`regmeta/server`): mount the registry into any
// node:http or https server, or let it listen on its own.
export { closeRegistry, createRegistry, type RegistryOptions, type RequestLogEntry } from './server.js';
export type { ConnectionLimits } from './connections.js';
