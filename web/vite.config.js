import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The dev server on :5173 proxies the API (and hqd dev's identity
// provider) to hqd on :8080, so the app always talks to its own origin.
// For a static host, build with VITE_API_BASE=https://api.example.com.
const hqd = process.env.HQD_URL || "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: {
    port: 5173,
    proxy: { "/api": hqd, "/dev": hqd },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
