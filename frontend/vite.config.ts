import { defineConfig } from 'vitest/config';

// The Rust server serves dist/ at "/" (and embeds it), so assets use relative URLs
// and work under any mount path. In `npm run dev`, /api, /health and /ws are proxied
// to HUBBUB_DEV_SERVER (default http://127.0.0.1:8080); `?server=` also works.
const devTarget = process.env.HUBBUB_DEV_SERVER || 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': { target: devTarget, changeOrigin: true },
      '/health': { target: devTarget, changeOrigin: true },
      '/ws': { target: devTarget.replace(/^http/, 'ws'), ws: true, changeOrigin: true },
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
  },
});
