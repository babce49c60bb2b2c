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
// axe checks a screen for accessibility problems with axe-core (every
// default rule, WCAG 2.x A and AA among them): zero violations allowed.
const axeSource = fs.readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const axeFindings = [];
async function axe(page, screen) {
  await page.evaluate(axeSource); // DevTools evaluation: the app's CSP does not apply
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
  });
  if (res.length) {
    axeFindings.push(...res.map((r) => `${screen}: ${r}`));
    throw new Error(`axe found ${res.length} problem(s) on ${screen}: ${res.join(" | ")}`);
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
  await axe(page, "sign-in");
  await signIn(page, true);
  await page.getByText("This folder is empty").waitFor();
  await shot(page, "02-files-empty");
  await axe(page, "files (empty)");
});

await step("create a folder and a file, then edit it", async () => {
  page.nextDialogValue = "notes";
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByLabel("Contents", { exact: true }).fill("# Notes\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("button", { name: "Close" }).click();
  await page.waitForURL("**/files/notes/");
  page.nextDialogValue = "todo.md";
  await page.getByRole("button", { name: "New file" }).click();
  await page.getByLabel("Contents", { exact: true }).fill("buy milk\n");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("button", { name: "Save" }).isDisabled();
  await shot(page, "03-editor");
  await axe(page, "editor");
  await page.getByRole("button", { name: "Close" }).click();
  await page.getByRole("link", { name: "todo.md", exact: true }).waitFor();
  await shot(page, "04-folder");
});

await step("a conflicting edit from a second browser gets the 412 flow and loses nothing", async () => {
  await page.getByRole("link", { name: "todo.md", exact: true }).click();
  await page.getByLabel("Contents", { exact: true }).fill("buy milk\nbuy bread (mine)\n");
  const ctxB = await browser.newContext();
  const other = await ctxB.newPage();
  await signIn(other, false);
  await other.getByRole("link", { name: "📁 notes/", exact: true }).click();
  await other.getByRole("link", { name: "todo.md", exact: true }).click();
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
  await axe(page, "conflict");
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
  await page.getByRole("link", { name: "big.bin", exact: true }).waitFor({ timeout: 20000 });
  await page.getByRole("link", { name: "small.txt", exact: true }).waitFor();
  // Every upload's progress reaches its end (it used to freeze after the first event).
  for (const name of ["big.bin", "small.txt"]) await page.getByRole("listitem").filter({ hasText: name }).getByText("done").waitFor();
  if ((await page.getByLabel("Upload of big.bin").getAttribute("value")) !== String(3 << 20)) throw new Error("big.bin's progress bar did not reach its end");
  await shot(page, "06-uploads");
  // 3 MiB of text opens as a card with a download, not in the editor.
  await page.getByRole("link", { name: "big.bin", exact: true }).click();
  await page.getByText("files over 2.1 MB open as a download").waitFor();
  if (await page.getByLabel("Contents", { exact: true }).count()) throw new Error("a 3 MiB file opened in the editor");
  await page.goBack();
  await page.getByRole("link", { name: "small.txt", exact: true }).waitFor();
});

await step("delete with confirmation", async () => {
  await page.getByRole("button", { name: "Delete notes/small.txt" }).click();
  await page.getByRole("link", { name: "small.txt", exact: true }).waitFor({ state: "detached" });
});

await step("the verifier streams a build to completion", async () => {
  await page.getByRole("link", { name: "Verifier" }).click();
  await page.getByLabel("Module", { exact: true }).fill("Proving.Basic");
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByRole("status", { name: "Outcome" }).getByText("Verified").waitFor({ timeout: 20000 });
  await shot(page, "07-verifier");
  await axe(page, "verifier with a run");
});

await step("the evaluator shows a refusal next to the leg", async () => {
  await page.getByRole("link", { name: "Evaluator" }).click();
  await page.getByRole("button", { name: "Long call" }).click();
  await page.getByLabel("Leg 1 side").selectOption("short");
  await page.getByRole("button", { name: "Evaluate" }).click();
  await page.getByRole("alert").getByText("without a covering long call").waitFor();
  // On the leg's own row (the server names the leg: SPEC §7), not under the form.
  await page.locator("tr.invalid").getByText("without a covering long call").waitFor();
  await shot(page, "08-evaluator-refused");
  await page.getByRole("button", { name: "Iron condor" }).click();
  await page.getByRole("button", { name: "Evaluate" }).click();
  await page.locator('dl[aria-label="Strategy"]').getByText("iron_condor", { exact: true }).waitFor();
  await page.getByRole("status", { name: "Outcome" }).getByText("Evaluated").waitFor({ timeout: 20000 });
  await page.getByRole("group", { name: "Result" }).getByRole("table").waitFor();
  await shot(page, "09-evaluator");
  await axe(page, "evaluator with a run");
});

await step("the payoff chart: drawn and labelled, redrawn as legs change, and its figures are the server's", async () => {
  const chart = page.getByRole("img", { name: /^Payoff diagram at expiry/ });
  for (const preset of ["Iron condor", "Vertical spread", "Butterfly", "Long call"]) {
    await page.getByRole("button", { name: preset, exact: true }).click();
    const label = await chart.getAttribute("aria-label");
    await page.getByRole("button", { name: "Evaluate" }).click();
    const dl = page.locator('dl[aria-label="Strategy"]');
    await dl.waitFor();
    const dd = async (term) => (await dl.locator(`dt:text-is("${term}") + dd`).innerText()).trim();
    const [loss, gain, bes] = [await dd("Maximum loss"), await dd("Maximum gain"), await dd("Break-evens")];
    const want = `maximum loss ${Number(loss)}, maximum gain ${gain === "unbounded" ? "unbounded" : Number(gain)}, ` +
      (bes ? "break-evens at " + bes.split(", ").map(Number).join(" and ") : "no break-even");
    if (!label.includes(want)) throw new Error(`${preset}: the chart says "${label}", the server "${want}"`);
  }
  await page.getByRole("button", { name: "Iron condor", exact: true }).click();
  const before = await chart.getAttribute("aria-label");
  if (!before.includes("maximum loss 3, maximum gain 2, break-evens at 93 and 107")) throw new Error("iron condor chart: " + before);
  await page.getByLabel("Leg 4 strike").fill("115");
  await page.waitForFunction((b) => document.querySelector('svg[role="img"]').getAttribute("aria-label") !== b, before);
  const after = await chart.getAttribute("aria-label");
  if (!after.includes("maximum loss 8")) throw new Error("the chart did not follow the new strike: " + after);
  await chart.focus();
  await page.keyboard.press("ArrowRight");
  await page.getByText(/^At [\d.]+: (profit|loss) /).waitFor();
  await shot(page, "13-payoff");
});

await step("Markdown previews rendered and sanitised, YAML highlighted; the listing filters and moves by keyboard", async () => {
  await page.goto(base + "/files/notes/");
  await page.getByRole("link", { name: "todo.md", exact: true }).waitFor();
  page.nextDialogValue = "preview.md";
  await page.keyboard.press("n"); // the shortcut for a new file
  await page.getByLabel("Contents", { exact: true }).fill('# Quarterly notes\n\n<script>window.pwned = 1</script>\n\n<img src="x" onerror="window.pwned = 2">\n\n![chart](https://evil.example/c.png)\n\n- one\n- two\n');
  const preview = page.getByRole("region", { name: "Preview" });
  await preview.getByRole("heading", { name: "Quarterly notes", level: 1 }).waitFor();
  await preview.getByRole("listitem").filter({ hasText: "two" }).waitFor();
  if (await preview.locator("script, img, [onerror]").count()) throw new Error("the preview kept a script, an image or a handler");
  await preview.getByText("[image: chart]").waitFor(); // a remote image becomes a link, never fetched
  if (await page.evaluate(() => window.pwned)) throw new Error("a script in the Markdown ran");
  await shot(page, "14-preview");
  await axe(page, "Markdown preview");
  await page.keyboard.press("Control+S");
  await page.getByText("Unsaved changes", { exact: true }).waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Close" }).click();
  page.nextDialogValue = "registry.yaml";
  await page.getByRole("button", { name: "New file" }).click();
  await page.getByLabel("Contents", { exact: true }).fill("workers:\n  - name: verifier\n    cores: 2\n");
  await page.getByRole("region", { name: "Preview" }).locator(".hljs-attr").first().waitFor();
  await page.keyboard.press("Control+S");
  await page.getByText("Unsaved changes", { exact: true }).waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Close" }).click();
  // "/" focuses the filter; the listing narrows to what matches.
  await page.getByRole("link", { name: "preview.md", exact: true }).waitFor();
  await page.keyboard.press("/");
  await page.keyboard.type("regis");
  await page.getByRole("link", { name: "registry.yaml", exact: true }).waitFor();
  if (await page.getByRole("link", { name: "preview.md", exact: true }).count()) throw new Error("the filter kept preview.md");
  await page.getByLabel("Filter").fill("");
  // The arrow keys move through the names.
  await page.getByRole("link", { name: "README.md", exact: true }).focus();
  await page.keyboard.press("ArrowDown");
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  if (focused === "README.md") throw new Error("ArrowDown did not move through the listing");
});

// Failures the user must understand, with their unsaved text kept. The
// server's answers are replaced in the browser (page.route) to make them
// happen on demand.
const errJSON = (status, code, message) => ({ status, contentType: "application/json", body: JSON.stringify({ error: { code, message } }) });

await step("a save that fails keeps the text and says why (413, server down)", async () => {
  await page.getByRole("link", { name: "Files" }).click();
  await page.getByRole("link", { name: "📁 notes/", exact: true }).click();
  await page.getByRole("link", { name: "todo.md", exact: true }).click();
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
  await page.getByRole("link", { name: "todo.md", exact: true }).click();
  await page.getByLabel("Contents", { exact: true }).fill("text typed before the session ended");
  await page.route("**/api/files/**", (r) => (r.request().method() === "PUT" ? r.fulfill(errJSON(401, "unauthorized", "x")) : r.continue()));
  await page.route("**/api/auth/refresh", (r) => r.fulfill(errJSON(401, "invalid_refresh_token", "sign in again")));
  await page.getByRole("button", { name: "Save" }).click();
  const dialog = page.getByRole("dialog", { name: "Session expired" });
  await dialog.waitFor();
  await axe(page, "session expired");
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

// ---- Never losing a user's work (issue 16), on a desktop and on a phone.

// handleDialogs answers prompt() with p.nextDialogValue, and accepts
// confirm() and beforeunload unless p.nextDialogDismiss is set.
function handleDialogs(p) {
  p.on("dialog", async (d) => {
    if (p.nextDialogDismiss) {
      p.nextDialogDismiss = false;
      await d.dismiss();
      return;
    }
    const v = p.nextDialogValue ?? "";
    p.nextDialogValue = undefined;
    if (d.type() === "prompt") await d.accept(v);
    else await d.accept();
  });
}

// apiAs signs in over the Cognito protocol from here (not the browser) and
// returns a caller of hqd's API as that user: the "other client" of these
// tests, and the way to look at what the server really holds.
async function apiAs(user, pass) {
  const cfg = await (await fetch(base + "/api/config")).json();
  const r = await fetch(cfg.cognitoEndpoint || base + "/dev/cognito/", {
    method: "POST",
    headers: { "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth", "Content-Type": "application/x-amz-json-1.1" },
    body: JSON.stringify({ ClientId: cfg.clientId, AuthFlow: "USER_PASSWORD_AUTH", AuthParameters: { USERNAME: user, PASSWORD: pass } }),
  });
  const token = (await r.json()).AuthenticationResult.AccessToken;
  return async (method, p, body, headers = {}) => {
    const resp = await fetch(base + p, { method, body, headers: { Authorization: "Bearer " + token, ...headers } });
    return { status: resp.status, headers: resp.headers, bytes: Buffer.from(await resp.arrayBuffer()) };
  };
}

const allBytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));

async function noSideScroll(p, width, screen) {
  const w = await p.evaluate(() => document.documentElement.scrollWidth);
  if (w > width + 1) throw new Error(`${screen} is ${w} px wide on a ${width} px screen`);
}

async function lossless(label, options) {
  const ctx = await browser.newContext(options);
  const p = await ctx.newPage();
  p.setDefaultTimeout(15000);
  p.on("pageerror", (e) => console.log(`${label} pageerror:`, e.message));
  handleDialogs(p);
  const width = options.viewport.width;
  const me = `${label}-${Date.now()}@example.com`;
  await step(`${label}: sign up with every password rule shown at once`, async () => {
    await p.goto(base + "/");
    await p.getByRole("button", { name: "Create an account" }).click();
    const rules = p.getByRole("list", { name: "It needs" });
    if ((await rules.getByRole("listitem").count()) !== 5) throw new Error("not all five password rules are listed");
    await p.getByLabel("E-mail").fill(me);
    await p.getByLabel("Password").fill("short");
    await rules.getByText("at least 8 characters (not yet)").waitFor();
    await noSideScroll(p, width, "the sign-up screen");
    await axe(p, `${label} sign-up`);
    await p.getByLabel("Password").fill(password);
    if ((await rules.locator("li.met").count()) !== 5) throw new Error("a good password does not meet every rule");
    await p.getByRole("button", { name: "Create account", exact: true }).click();
    await p.getByRole("button", { name: "Sign out" }).waitFor();
    await p.waitForURL("**/files/");
  });
  const api = await apiAs(me, password);

  await step(`${label}: a binary file (every byte value) renamed and downloaded byte-exact`, async () => {
    await p.getByLabel("Upload files").setInputFiles([{ name: "all.bin", mimeType: "application/octet-stream", buffer: allBytes }]);
    await p.getByRole("link", { name: "all.bin", exact: true }).waitFor();
    p.nextDialogValue = "kept/renamed.bin";
    await p.getByRole("button", { name: "Rename all.bin" }).click();
    await p.getByRole("link", { name: "📁 kept/", exact: true }).click();
    await p.waitForURL("**/files/kept/");
    const [dl] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Download kept/renamed.bin" }).click()]);
    const got = fs.readFileSync(await dl.path());
    if (!got.equals(allBytes)) throw new Error(`downloaded ${got.length} bytes, not the 512 uploaded`);
    if ((await api("GET", "/api/files/all.bin?raw=1")).status !== 404) throw new Error("the old name is still there");
    // Opened, it is a card with a download, never text in the editor.
    await p.getByRole("link", { name: "renamed.bin", exact: true }).click();
    await p.getByText("It is not text").waitFor();
    if (await p.getByLabel("Contents", { exact: true }).count()) throw new Error("a binary file opened in the editor");
    await noSideScroll(p, width, "the file card");
    await axe(p, `${label} file card`);
  });

  await step(`${label}: a rename refused by a concurrent change leaves exactly one file`, async () => {
    await p.goto(base + "/files/kept/");
    await p.getByRole("link", { name: "renamed.bin", exact: true }).waitFor();
    // Another client rewrites the file after this page listed it.
    if ((await api("PUT", "/api/files/kept/renamed.bin?raw=1", "changed elsewhere")).status !== 200) throw new Error("the other client's write failed");
    p.nextDialogValue = "kept/again.bin";
    await p.getByRole("button", { name: "Rename kept/renamed.bin" }).click();
    await p.getByRole("alert").getByText("was changed or removed since this list was loaded").waitFor();
    await noSideScroll(p, width, "a folder");
    await axe(p, `${label} folder`);
    const list = JSON.parse((await api("GET", "/api/files?prefix=kept/")).bytes);
    const names = list.files.map((f) => f.path).join(",");
    if (names !== "kept/renamed.bin") throw new Error("files after the refused rename: " + names);
  });

  await step(`${label}: a drop onto an existing name asks; Keep both keeps both, Skip keeps the old one`, async () => {
    await api("PUT", "/api/files/kept/notes.md?raw=1", "the original");
    await p.goto(base + "/files/kept/");
    await p.getByRole("link", { name: "notes.md", exact: true }).waitFor();
    const drop = async (text) => {
      const dt = await p.evaluateHandle((t) => {
        const d = new DataTransfer();
        d.items.add(new File([t], "notes.md", { type: "text/markdown" }));
        return d;
      }, text);
      await p.dispatchEvent('section[aria-label="Files"]', "drop", { dataTransfer: dt });
    };
    await drop("dropped copy");
    const ask = p.getByRole("dialog").filter({ hasText: "already exists" });
    await ask.waitFor();
    await noSideScroll(p, width, "the upload question");
    await axe(p, `${label} upload question`);
    await ask.getByRole("button", { name: "Keep both" }).click();
    await p.getByRole("link", { name: "notes (2).md", exact: true }).waitFor();
    await drop("skipped copy");
    await ask.getByRole("button", { name: "Skip" }).click();
    await p.getByText("skipped: a file of that name exists").waitFor();
    const orig = (await api("GET", "/api/files/kept/notes.md?raw=1")).bytes.toString();
    const second = (await api("GET", "/api/files/kept/notes%20(2).md?raw=1")).bytes.toString();
    if (orig !== "the original" || second !== "dropped copy") throw new Error(`notes.md = ${orig}, notes (2).md = ${second}`);
    // "New file" with a name that exists says so, instead of opening an
    // empty editor whose save would then look like someone else's edit.
    p.nextDialogValue = "notes.md";
    await p.getByRole("button", { name: "New file" }).click();
    await p.getByRole("alert").getByText("A file named notes.md already exists here").waitFor();
  });

  await step(`${label}: typed text survives another screen, Back, a reload and a refused sign-out`, async () => {
    await p.getByRole("link", { name: "notes.md", exact: true }).click();
    await p.waitForURL("**/files/kept/notes.md");
    await p.getByLabel("Contents", { exact: true }).fill("typed, not saved");
    await p.getByRole("link", { name: "Verifier" }).click();
    await p.getByRole("heading", { name: "Verifier" }).waitFor();
    await noSideScroll(p, width, "the verifier");
    await p.goBack();
    await p.getByText("Your unsaved changes from").waitFor();
    if ((await p.getByLabel("Contents", { exact: true }).inputValue()) !== "typed, not saved") throw new Error("lost on Back");
    await p.reload();
    await p.getByText("Your unsaved changes from").waitFor();
    if ((await p.getByLabel("Contents", { exact: true }).inputValue()) !== "typed, not saved") throw new Error("lost on reload");
    p.nextDialogDismiss = true; // "Sign out and discard them?" — no
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.getByRole("button", { name: "Sign out" }).waitFor();
    if ((await p.getByLabel("Contents", { exact: true }).inputValue()) !== "typed, not saved") throw new Error("lost on a refused sign-out");
    await noSideScroll(p, width, "the editor");
    await p.keyboard.press("Control+S"); // saves, with the editor focused or not
    await p.getByText("Unsaved changes", { exact: true }).waitFor({ state: "detached" });
    if ((await api("GET", "/api/files/kept/notes.md?raw=1")).bytes.toString() !== "typed, not saved") throw new Error("Ctrl-S did not save");
  });

  await step(`${label}: an offline reload keeps the session`, async () => {
    await p.goto(base + "/files/kept/");
    await p.evaluate(() => navigator.serviceWorker.ready);
    await ctx.setOffline(true);
    await p.reload();
    await p.getByText("You are offline").waitFor();
    await p.getByRole("button", { name: "Sign out" }).waitFor();
    await ctx.setOffline(false);
    await p.reload();
    await p.getByRole("link", { name: "notes.md", exact: true }).waitFor();
    if (await p.getByRole("heading", { name: "Sign in" }).count()) throw new Error("signed out by an offline reload");
  });

  await step(`${label}: a reload mid-run reattaches to the run`, async () => {
    await p.getByRole("link", { name: "Verifier" }).click();
    await p.getByLabel("Module", { exact: true }).fill("Proving.Slow");
    await p.getByRole("button", { name: "Check" }).click();
    await p.waitForURL(/\/verify\?job=/);
    const url = p.url();
    await p.getByLabel("Build progress").waitFor();
    await p.reload();
    if (p.url() !== url) throw new Error("the reload lost the run's URL");
    await p.getByRole("region", { name: "Your runs" }).getByText("Proving.Slow").waitFor();
    await p.getByRole("status", { name: "Outcome" }).getByText("Verified").waitFor({ timeout: 30000 });
  });

  await step(`${label}: the per-user limit is never reached without the runs listed, and they can be cancelled`, async () => {
    let refused = false;
    for (let i = 1; i <= 5 && !refused; i++) {
      await p.getByLabel("Module", { exact: true }).fill("Proving.Slow" + i);
      await p.getByRole("button", { name: "Check" }).click();
      const alert = p.getByRole("alert").getByText("active jobs");
      const url = p.waitForURL(new RegExp("job=(?!" + new URL(p.url()).searchParams.get("job") + ")"), { timeout: 15000 }).then(() => false);
      refused = await Promise.race([alert.waitFor().then(() => true).catch(() => false), url.catch(() => false)]);
    }
    if (!refused) throw new Error("five runs were allowed at once");
    const runs = p.getByRole("region", { name: "Your runs" });
    const cancels = runs.getByRole("button", { name: /^Cancel the run/ });
    await p.waitForFunction(() => document.querySelectorAll('[aria-label="Your runs"] button[aria-label^="Cancel the run"]').length >= 4);
    await noSideScroll(p, width, "the verifier with its runs");
    await axe(p, `${label} verifier with runs`);
    while ((await cancels.count()) > 0) {
      await cancels.first().click();
      await p.waitForTimeout(200);
    }
    await runs.getByText("cancelled").first().waitFor();
    await p.getByLabel("Module", { exact: true }).fill("Proving.Basic");
    await p.getByRole("button", { name: "Check" }).click();
    await p.getByRole("status", { name: "Outcome" }).getByText("Verified").waitFor({ timeout: 30000 });
  });

  await step(`${label}: the evaluator fits the screen`, async () => {
    await p.getByRole("link", { name: "Evaluator" }).click();
    await p.getByRole("heading", { name: "Evaluator" }).waitFor();
    await noSideScroll(p, width, "the evaluator");
    await axe(p, `${label} evaluator`);
    if (label === "phone") await p.screenshot({ path: path.join(shots, "12-phone-evaluator.png"), fullPage: true });
  });

  await step(`${label}: signing out from the evaluator signs out, with no "session expired"`, async () => {
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.getByRole("heading", { name: "Sign in" }).waitFor();
    if (await p.getByRole("dialog", { name: "Session expired" }).count()) throw new Error("a deliberate sign-out was shown as an expired session");
  });
  await ctx.close();
}

await lossless("desktop", { viewport: { width: 1100, height: 800 } });
await lossless("phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

await browser.close();
if (axeFindings.length) console.log("axe findings:\n" + axeFindings.join("\n"));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
