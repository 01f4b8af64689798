import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Process, crash and client tests spawn real processes; give them room.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
