// Lighthouse (the npm package, in Debian's Chromium) on the sign-in screen
// and the signed-in files screen of a running `hqd dev`: every category
// must score at least 95. Usage: node e2e/lighthouse.mjs BASE_URL OUT.md
// OUT.md gets the scores with the run's date (make docs keeps them in
// docs/LIGHTHOUSE.md; make test writes them to a temporary file).
import fs from "node:fs";
import puppeteer from "puppeteer-core";
import { startFlow, desktopConfig } from "lighthouse";

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error("usage: node e2e/lighthouse.mjs BASE_URL OUT.md");
  process.exit(2);
}
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage();
const flow = await startFlow(page, { config: desktopConfig, name: "hqd" });

await flow.navigate(base + "/", { name: "Sign-in screen" });

// Sign up and in as a person would, then measure the files screen with the
// session the tab keeps (storage not reset).
const email = `lighthouse-${Date.now()}@example.com`;
await page.waitForSelector("text/Create an account");
await page.locator("button::-p-text(Create an account)").click();
await page.locator("#email").fill(email);
await page.locator("#password").fill("Passw0rd!");
await page.locator("button::-p-text(Create account)").click();
await page.waitForSelector("text/This folder is empty");
await flow.navigate(base + "/files/", { name: "Files screen, signed in", flags: { disableStorageReset: true } });
// It was measured signed in: the tab kept its session.
await page.waitForSelector("text/Sign out", { timeout: 10000 });

const result = await flow.createFlowResult();
await browser.close();
const rows = [];
let failed = false;
for (const step of result.steps) {
  for (const [id, cat] of Object.entries(step.lhr.categories)) {
    const score = Math.round((cat.score ?? 0) * 100);
    if (score < 95) failed = true;
    rows.push(`| ${step.name} | ${cat.title} | ${score} |`);
    if (score < 95) {
      for (const ref of cat.auditRefs) {
        const a = step.lhr.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 0.9) console.log(`  ${step.name} · ${id} · ${a.id}: ${a.title} (${a.displayValue || a.score})`);
      }
    }
  }
}
const md = `# Lighthouse scores\n\nLighthouse ${result.steps[0].lhr.lighthouseVersion}, desktop preset, Debian's Chromium, against \`hqd dev\` on this project's build machine (2 cores), ${new Date().toISOString().slice(0, 10)}. Refreshed by \`make docs\`; \`make test\` requires every score to be at least 95.\n\n| Screen | Category | Score |\n|---|---|---|\n${rows.join("\n")}\n`;
fs.writeFileSync(out, md);
console.log(md);
process.exit(failed ? 1 : 0);
