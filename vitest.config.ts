import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The package's own name means its sources here, not the built dist/
    // (tsconfig.json's paths say the same to tsc and tsx).
    alias: [
      { find: /^regmeta$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^regmeta\/server$/, replacement: fileURLToPath(new URL('./src/server.ts', import.meta.url)) },
      { find: /^regmeta\/postgres$/, replacement: fileURLToPath(new URL('./src/postgres.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Process, crash and client tests spawn real processes; give them room.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
