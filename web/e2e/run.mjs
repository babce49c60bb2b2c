// End-to-end tests of the PWA in a real Chromium (Debian's package, driven
// by playwright-core), against a running `hqd dev` with the stand-in lake.
// Usage: node e2e/run.mjs BASE_URL SCREENSHOT_DIR
// Exits non-zero on the first failure, saying which step failed.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error("usage: node e2e/run.mjs BASE_URL SCREENSHOT_DIR");
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });
const exe = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}
const shot = (page, name) => page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });

const email = `e2e-${Date.now()}@example.com`;
const password = "Passw0rd!";

async function signIn(page, create) {
  await page.goto(base + "/");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  if (create) {
    await page.getByRole("button", { name: "Create an account" }).click();
  }
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: create ? "Create account" : "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 10000 });
}

const ctxA = await browser.newContext({ viewport: { width: 1100, height: 800 } });
const page = await ctxA.newPage();
page.setDefaultTimeout(15000); // generous: make test runs other packages on the same two cores
page.on("console", (m) => m.type() === "error" && console.log("console:", m.text()));
page.on("pageerror", (e) => console.log("pageerror:", e.message));
page.on("dialog", async (d) => {
  const v = page.nextDialogValue ?? "";
  page.nextDialogValue = undefined;
  if (d.type() === "prompt") await d.accept(v);
  else await d.accept();
});

await step("sign up and sign in", async () => {
  await page.goto(base + "/");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await shot(page, "01-sign-in");
  await signIn(page, true);
  await page.getByText("This folder is empty").waitFor();
  await shot(page, "02-files-empty");
});

await step("create a folder and a file, then edit it", async () => {
  page.nextDialogValue = "notes";
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByLabel("Contents", { exact: true }).fill("# Notes\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("button", { name: "Close" }).click();
  await page.getByRole("button", { name: "📁 notes/", exact: true }).click();
  page.nextDialogValue = "todo.md";
  await page.getByRole("button", { name: "New file" }).click();
  await page.getByLabel("Contents", { exact: true }).fill("buy milk\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("button", { name: "Save" }).isDisabled();
  await shot(page, "03-editor");
  await page.getByRole("button", { name: "Close" }).click();
  await page.getByRole("button", { name: "todo.md", exact: true }).waitFor();
  await shot(page, "04-folder");
});

await step("a conflicting edit from a second browser gets the 412 flow and loses nothing", async () => {
  await page.getByRole("button", { name: "todo.md", exact: true }).click();
  await page.getByLabel("Contents", { exact: true }).fill("buy milk\nbuy bread (mine)\n");
  const ctxB = await browser.newContext();
  const other = await ctxB.newPage();
  await signIn(other, false);
  await other.getByRole("button", { name: "📁 notes/", exact: true }).click();
  await other.getByRole("button", { name: "todo.md", exact: true }).click();
  await other.getByLabel("Contents", { exact: true }).fill("buy milk\nbuy eggs (theirs)\n");
  await other.getByRole("button", { name: "Save" }).click();
  await other.getByText("Unsaved changes").waitFor({ state: "detached" });
  await ctxB.close();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Someone else saved this file").waitFor();
  const mine = await page.getByLabel("Your version").inputValue();
  const theirs = await page.getByLabel("Their version").inputValue();
  if (!mine.includes("(mine)") || !theirs.includes("(theirs)")) throw new Error(`versions: ${mine} / ${theirs}`);
  await shot(page, "05-conflict");
  await page.getByRole("button", { name: "Keep mine" }).click();
  await page.getByText("Someone else saved this file").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Close" }).click();
});

await step("upload several files with a progress bar each", async () => {
  const big = Buffer.alloc(3 << 20, 120);
  await page.getByLabel("Upload files").setInputFiles([
    { name: "big.bin", mimeType: "application/octet-stream", buffer: big },
    { name: "small.txt", mimeType: "text/plain", buffer: Buffer.from("hello") },
  ]);
  await page.getByLabel("Upload of big.bin").waitFor();
  await page.getByRole("button", { name: "big.bin", exact: true }).waitFor({ timeout: 20000 });
  await page.getByRole("button", { name: "small.txt", exact: true }).waitFor();
  await shot(page, "06-uploads");
});

await step("delete with confirmation", async () => {
  await page.getByRole("button", { name: "Delete notes/small.txt" }).click();
  await page.getByRole("button", { name: "small.txt", exact: true }).waitFor({ state: "detached" });
});

await step("the verifier streams a build to completion", async () => {
  await page.getByRole("link", { name: "Verifier" }).click();
  await page.getByLabel("Module", { exact: true }).fill("Proving.Basic");
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByRole("status", { name: "Outcome" }).getByText("Verified").waitFor({ timeout: 20000 });
  await shot(page, "07-verifier");
});

await step("the evaluator shows a refusal next to the leg", async () => {
  await page.getByRole("link", { name: "Evaluator" }).click();
  await page.getByRole("button", { name: "Long call" }).click();
  await page.getByLabel("Leg 1 side").selectOption("short");
  await page.getByRole("button", { name: "Evaluate" }).click();
  await page.getByRole("alert").getByText("without a covering long call").waitFor();
  // On the leg's own row (the server names the leg: SPEC §7), not under the form.
  await page.locator('tr[aria-invalid="true"]').getByText("without a covering long call").waitFor();
  await shot(page, "08-evaluator-refused");
  await page.getByRole("button", { name: "Iron condor" }).click();
  await page.getByRole("button", { name: "Evaluate" }).click();
  await page.locator('dl[aria-label="Strategy"]').getByText("iron_condor", { exact: true }).waitFor();
  await page.getByRole("status", { name: "Outcome" }).waitFor({ timeout: 20000 });
  await shot(page, "09-evaluator");
});

// Failures the user must understand, with their unsaved text kept. The
// server's answers are replaced in the browser (page.route) to make them
// happen on demand.
const errJSON = (status, code, message) => ({ status, contentType: "application/json", body: JSON.stringify({ error: { code, message } }) });

await step("a save that fails keeps the text and says why (413, server down)", async () => {
  await page.getByRole("link", { name: "Files" }).click();
  await page.getByRole("button", { name: "📁 notes/", exact: true }).click();
  await page.getByRole("button", { name: "todo.md", exact: true }).click();
  await page.getByLabel("Contents", { exact: true }).fill("precious unsaved text");
  await page.route("**/api/files/**", (r) => (r.request().method() === "PUT" ? r.fulfill(errJSON(413, "body_too_large", "the request body is larger than 5368709120 bytes")) : r.continue()));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").getByText("larger than").waitFor();
  await page.unroute("**/api/files/**");
  await page.route("**/api/files/**", (r) => r.abort("connectionrefused"));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").getByText("cannot be reached").waitFor();
  await page.unroute("**/api/files/**");
  if ((await page.getByLabel("Contents", { exact: true }).inputValue()) !== "precious unsaved text") throw new Error("the text was lost");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Unsaved changes").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Close" }).click();
});

await step("a 401 mid-upload that cannot be refreshed says to sign in again", async () => {
  await page.route("**/api/files/**", (r) => (r.request().method() === "PUT" ? r.fulfill(errJSON(401, "unauthorized", "a valid bearer token is required")) : r.continue()));
  await page.route("**/api/auth/refresh", (r) => r.fulfill(errJSON(401, "invalid_refresh_token", "sign in again")));
  await page.getByLabel("Upload files").setInputFiles([{ name: "late.txt", mimeType: "text/plain", buffer: Buffer.from("late") }]);
  await page.getByText("Your session expired during the upload").waitFor();
  await page.unroute("**/api/files/**");
  await page.unroute("**/api/auth/refresh");
});

await step("an expired session keeps the unsaved text under the sign-in dialog", async () => {
  await page.getByRole("button", { name: "todo.md", exact: true }).click();
  await page.getByLabel("Contents", { exact: true }).fill("text typed before the session ended");
  await page.route("**/api/files/**", (r) => (r.request().method() === "PUT" ? r.fulfill(errJSON(401, "unauthorized", "x")) : r.continue()));
  await page.route("**/api/auth/refresh", (r) => r.fulfill(errJSON(401, "invalid_refresh_token", "sign in again")));
  await page.getByRole("button", { name: "Save" }).click();
  const dialog = page.getByRole("dialog", { name: "Session expired" });
  await dialog.waitFor();
  await page.unroute("**/api/files/**");
  await page.unroute("**/api/auth/refresh");
  await dialog.getByLabel("E-mail").fill(email);
  await dialog.getByLabel("Password").fill(password);
  await dialog.getByRole("button", { name: "Sign in", exact: true }).click();
  await dialog.waitFor({ state: "detached" });
  if ((await page.getByLabel("Contents", { exact: true }).inputValue()) !== "text typed before the session ended") throw new Error("the text was lost");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Unsaved changes").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Close" }).click();
});

await step("a full job queue says so and keeps the source", async () => {
  await page.goto(base + "/#/verify");
  await page.getByText("A Lean snippet").click();
  await page.getByLabel("Lean source").fill("theorem mine : True := trivial");
  await page.route("**/api/verify", (r) => r.fulfill({ ...errJSON(429, "queue_full", "the job queue is full; try again shortly"), headers: { "Retry-After": "10" } }));
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByRole("alert").getByText("try again in 10 s").waitFor();
  await page.unroute("**/api/verify");
  if ((await page.getByLabel("Lean source").inputValue()) !== "theorem mine : True := trivial") throw new Error("the source was lost");
});

await step("the app loads offline after a first visit", async () => {
  await page.goto(base + "/");
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await ctxA.setOffline(true);
  await page.reload();
  await page.getByText("You are offline").waitFor();
  await shot(page, "10-offline");
  await ctxA.setOffline(false);
});

await step("the app is installable in Chromium", async () => {
  const cdp = await ctxA.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  // Playwright's contexts are incognito, where Chromium never installs; every
  // other reason would be the app's.
  const real = installabilityErrors.filter((e) => e.errorId !== "in-incognito");
  if (real.length) throw new Error(JSON.stringify(real));
  const manifest = await cdp.send("Page.getAppManifest");
  if (!manifest.url || (manifest.errors || []).length) throw new Error("manifest: " + JSON.stringify(manifest.errors));
});

await step("a phone-sized screen is usable", async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p = await phone.newPage();
  await p.goto(base + "/");
  await p.getByRole("heading", { name: "Sign in" }).waitFor();
  await p.screenshot({ path: path.join(shots, "11-phone.png") });
  await phone.close();
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
