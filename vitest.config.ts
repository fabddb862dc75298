import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**', '**/assembly/**'],
    // Tests start real servers (registry, gRPC, xDS); give them room on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The JSON report gives .ci/run the totals it prints; the default reporter is for people.
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-results.json' },
  },
});
