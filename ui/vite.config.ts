import { defineConfig } from "vitest/config";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The app loads only what Vite builds into dist/: no remote content.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    target: "es2022",
    // One CSS file and no inline styles: the CSP allows 'self' only.
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  // Tests mount components: Svelte's browser build, not its server one.
  resolve: process.env.VITEST ? { conditions: ["browser"] } : undefined,
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts"],
  },
});
