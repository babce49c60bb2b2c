// ESLint for the PWA (make test runs it with zero findings allowed):
// typescript-eslint's recommended rules, React's hook rules, and jsx-a11y's
// accessibility rules over the app; plain recommended rules over the
// scripts and the service worker.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import reactHooks from "eslint-plugin-react-hooks";
import jsxA11y from "eslint-plugin-jsx-a11y";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**"] },
  js.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}"],
    extends: [...tseslint.configs.recommended],
    plugins: { "react-hooks": reactHooks, "jsx-a11y": jsxA11y },
    languageOptions: { globals: globals.browser },
    rules: {
      ...reactHooks.configs.recommended.rules,
      ...jsxA11y.flatConfigs.recommended.rules,
    },
  },
  { files: ["public/sw.js"], languageOptions: { globals: globals.serviceworker } },
  { files: ["compress.mjs", "vite.config.js", "eslint.config.js"], languageOptions: { globals: globals.node } },
  // The browser tests run in Node; what they pass to page.evaluate runs in the page.
  { files: ["e2e/**/*.mjs"], languageOptions: { globals: { ...globals.node, ...globals.browser } } },
);
