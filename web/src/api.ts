import type { DoneData } from "./sse";
// The API client: sign-in against Cognito's JSON protocol (Cognito,
// cognito-local or hqd dev's provider: the endpoint comes from /api/config),
// the session with its silent refresh, and the files and jobs routes.
//
// Where tokens live: the access and id tokens in memory only; the refresh
// token in sessionStorage, so a reload of the tab keeps the session and
// closing it ends it. The CSP lets no script but this app's own run, so no
// third-party script can read it; an HttpOnly cookie would hide it from our
// own script too, but would make every refresh a cookie-authenticated POST
// that needs CSRF defences hqd does not have.

export const API_BASE: string = import.meta.env?.VITE_API_BASE || "";

// What the Cognito protocol answers to the calls the app makes.
type CognitoAnswer = {
  UserConfirmed?: boolean;
  ChallengeName?: string;
  AuthenticationResult?: { AccessToken: string; IdToken: string; RefreshToken: string; ExpiresIn: number };
  __type?: string;
  message?: string;
};

// RefreshAnswer is POST /api/auth/refresh's answer (SPEC §5.2), as far as
// the app uses it.
type RefreshAnswer = { accessToken: string; idToken: string; refreshToken?: string; expiresIn: number };

export type Config = { region: string; userPoolId: string; clientId: string; cognitoEndpoint?: string };

export class ApiError extends Error {
  status: number;
  code: string;
  leg?: number; // the evaluator's refusal: the leg it is about, 1-based as sent
  constructor(status: number, code: string, message: string, leg?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.leg = leg;
  }
}

export type Tokens = { accessToken: string; idToken: string; refreshToken: string; expiresAt: number };

const REFRESH_KEY = "hq.refreshToken";

// refreshDelay is how long to wait before refreshing a session whose access
// token expires at expiresAt: a minute early, or at half its life when it is
// short, never less than a second.
export function refreshDelay(expiresAt: number, now: number): number {
  const left = expiresAt - now;
  return Math.max(1000, left - 60_000, left / 2);
}

export class Client {
  base: string;
  fetch: typeof fetch;
  config?: Config;
  tokens?: Tokens;
  storage?: Storage;
  timer?: ReturnType<typeof setTimeout>;
  onSession: (t?: Tokens) => void = () => {};

  constructor(base = API_BASE, f: typeof fetch = (...a) => fetch(...a), storage?: Storage) {
    this.base = base;
    this.fetch = f;
    this.storage = storage;
  }

  async loadConfig(): Promise<Config> {
    if (!this.config) this.config = await this.json<Config>("GET", "/api/config", undefined, false);
    return this.config;
  }

  cognitoURL(): string {
    const c = this.config!;
    return c.cognitoEndpoint || `https://cognito-idp.${c.region}.amazonaws.com/`;
  }

  async cognito(action: string, body: object): Promise<CognitoAnswer> {
    await this.loadConfig();
    let resp: Response;
    try {
      resp = await this.fetch(this.cognitoURL(), {
        method: "POST",
        headers: { "X-Amz-Target": "AWSCognitoIdentityProviderService." + action, "Content-Type": "application/x-amz-json-1.1" },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "The sign-in service cannot be reached. Check your connection and try again.");
    }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const type = String(data.__type || "Error").split("#").pop()!;
      throw new ApiError(resp.status, type, data.message || type);
    }
    return data;
  }

  async signUp(email: string, password: string): Promise<{ confirmed: boolean }> {
    const c = await this.loadConfig();
    const out = await this.cognito("SignUp", {
      ClientId: c.clientId, Username: email, Password: password, UserAttributes: [{ Name: "email", Value: email }],
    });
    return { confirmed: !!out.UserConfirmed };
  }

  async confirm(email: string, code: string): Promise<void> {
    const c = await this.loadConfig();
    await this.cognito("ConfirmSignUp", { ClientId: c.clientId, Username: email, ConfirmationCode: code });
  }

  async signIn(email: string, password: string): Promise<Tokens> {
    const c = await this.loadConfig();
    const out = await this.cognito("InitiateAuth", {
      ClientId: c.clientId, AuthFlow: "USER_PASSWORD_AUTH", AuthParameters: { USERNAME: email, PASSWORD: password },
    });
    const r = out.AuthenticationResult;
    if (!r) throw new ApiError(400, "challenge", "This account needs a step the app does not support yet: " + (out.ChallengeName || "unknown"));
    this.setSession({ accessToken: r.AccessToken, idToken: r.IdToken, refreshToken: r.RefreshToken, expiresAt: Date.now() + r.ExpiresIn * 1000 });
    return this.tokens!;
  }

  setSession(t?: Tokens) {
    this.tokens = t;
    clearTimeout(this.timer);
    if (t) {
      this.storage?.setItem(REFRESH_KEY, t.refreshToken);
      this.timer = setTimeout(
        () => this.refresh().catch((e) => (refused(e) ? this.setSession(undefined) : this.retryLater())),
        refreshDelay(t.expiresAt, Date.now()),
      );
    } else {
      this.storage?.removeItem(REFRESH_KEY);
    }
    this.onSession(t);
  }

  // resume restores a session from the tab's refresh token, if any. Only a
  // refusal (the token is no longer valid) ends it: when hqd cannot be
  // reached (offline, a restart), the session is kept and refreshed again
  // later, and the app opens signed in with what it has.
  async resume(): Promise<boolean> {
    const rt = this.storage?.getItem(REFRESH_KEY);
    if (!rt) return false;
    this.tokens = { accessToken: "", idToken: "", refreshToken: rt, expiresAt: 0 };
    try {
      await this.refresh();
      return true;
    } catch (e) {
      if (refused(e)) {
        this.setSession(undefined);
        return false;
      }
      this.retryLater();
      return true;
    }
  }

  // retryLater refreshes again in 30 s, or as soon as the browser is back
  // online, until the server answers one way or the other.
  retryLater() {
    clearTimeout(this.timer);
    const again = () => {
      globalThis.removeEventListener?.("online", again);
      clearTimeout(this.timer);
      this.refresh().catch((e) => (refused(e) ? this.setSession(undefined) : this.retryLater()));
    };
    this.timer = setTimeout(again, 30_000);
    globalThis.addEventListener?.("online", again, { once: true });
  }

  refreshing?: Promise<void>;

  // refresh trades the refresh token for new tokens at hqd; concurrent
  // callers share one request.
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        const rt = this.tokens?.refreshToken;
        if (!rt) throw new ApiError(401, "unauthorized", "Please sign in.");
        const out = await this.json<RefreshAnswer>("POST", "/api/auth/refresh", { refreshToken: rt }, false);
        this.setSession({ accessToken: out.accessToken, idToken: out.idToken, refreshToken: out.refreshToken || rt, expiresAt: Date.now() + out.expiresIn * 1000 });
      })().finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  signingOut = false;

  async signOut(): Promise<void> {
    const t = this.tokens;
    this.signingOut = true;
    this.setSession(undefined);
    this.signingOut = false;
    if (t?.accessToken) await this.json("POST", "/api/auth/logout", { refreshToken: t.refreshToken }, false, t.accessToken).catch(() => {});
  }

  // request sends an API request with the access token; a 401 refreshes the
  // session once and retries.
  async request(method: string, path: string, body?: BodyInit | null, headers: Record<string, string> = {}, auth = true): Promise<Response> {
    const send = async () => {
      const h: Record<string, string> = { ...headers };
      if (auth && this.tokens?.accessToken) h.Authorization = "Bearer " + this.tokens.accessToken;
      try {
        return await this.fetch(this.base + path, { method, headers: h, body });
      } catch {
        throw new ApiError(0, "network", "hqd cannot be reached. Check your connection; nothing was lost.");
      }
    };
    let resp = await send();
    if (resp.status === 401 && auth && this.tokens?.refreshToken) {
      try {
        await this.refresh();
      } catch (e) {
        if (!refused(e)) throw e; // hqd unreachable: the session stays
        this.setSession(undefined);
        throw new ApiError(401, "session_expired", "Your session has expired. Sign in again; your unsaved work is kept.");
      }
      resp = await send();
    }
    return resp;
  }

  async json<T>(method: string, path: string, body?: unknown, auth = true, token?: string): Promise<T> {
    const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
    let resp: Response;
    if (token) {
      resp = await this.fetch(this.base + path, { method, headers: { ...headers, Authorization: "Bearer " + token }, body: JSON.stringify(body) });
    } else {
      resp = await this.request(method, path, body === undefined ? undefined : JSON.stringify(body), headers, auth);
    }
    return (await check(resp)) as T;
  }
}

// refused tells a refresh the server turned down (the session is over)
// from one that could not be made (no network, hqd restarting, 5xx).
export function refused(e: unknown): boolean {
  return e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;
}

// check returns the JSON of a successful answer, or throws its error.
export async function check(resp: Response): Promise<unknown> {
  if (resp.status === 204) return null;
  const data: { error?: { code?: string; message?: string; leg?: unknown } } | null = await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = data?.error || {};
    let msg = e.message || `hqd answered ${resp.status}`;
    const retry = resp.headers.get("Retry-After");
    if (retry && (resp.status === 429 || resp.status >= 500)) msg += ` (try again in ${retry} s)`;
    throw new ApiError(resp.status, e.code || "error", msg, typeof e.leg === "number" ? e.leg : undefined);
  }
  return data;
}

export type FileEntry = { path: string; size: number; etag: string; lastModified: string };
export type Listing = { files: FileEntry[]; folders: string[]; nextToken?: string };

export function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}

export async function list(c: Client, prefix: string, token?: string): Promise<Listing> {
  const q = new URLSearchParams({ delimiter: "/", prefix });
  if (token) q.set("token", token);
  const l = await c.json<Listing>("GET", "/api/files?" + q);
  return { files: l.files || [], folders: l.folders || [], nextToken: l.nextToken };
}

// readFile reads a file's bytes with its ETag and type.
export async function readFile(c: Client, path: string): Promise<{ bytes: ArrayBuffer; etag: string; type: string }> {
  const resp = await c.request("GET", "/api/files/" + encodePath(path) + "?raw=1");
  if (!resp.ok) await check(resp);
  return { bytes: await resp.arrayBuffer(), etag: resp.headers.get("ETag") || "", type: resp.headers.get("Content-Type") || "" };
}

// asText decodes a file as UTF-8 text, or answers null for a binary file
// (invalid UTF-8 or a NUL byte), which the editor must never open.
export function asText(bytes: ArrayBuffer): string | null {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.includes("\u0000") ? null : text;
  } catch {
    return null;
  }
}

// move renames (or copies) a file on the server: byte-exact, with If-Match
// on the source; 409 destination_exists unless overwrite.
export async function move(c: Client, from: string, to: string, opt: { ifMatch?: string; overwrite?: boolean; copy?: boolean } = {}): Promise<{ path: string; etag: string }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (opt.ifMatch) headers["If-Match"] = opt.ifMatch;
  const body = JSON.stringify({ from, to, copy: !!opt.copy, overwrite: !!opt.overwrite });
  return (await check(await c.request("POST", "/api/files-move", body, headers))) as { path: string; etag: string };
}

export type JobSummary = { id: string; kind: string; status: string; createdAt: string; target?: string; strategy?: string; done?: DoneData };

// listJobs is the caller's active and kept jobs, newest first.
export async function listJobs(c: Client): Promise<JobSummary[]> {
  return (await c.json<{ jobs: JobSummary[] }>("GET", "/api/jobs")).jobs || [];
}

// formatSize shows a byte count as people read it.
export function formatSize(n: number): string {
  if (n < 1000) return n + " B";
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return (v < 10 ? v.toFixed(1) : Math.round(v).toString()) + " " + units[i];
}

export async function readText(c: Client, path: string): Promise<{ text: string; etag: string }> {
  const resp = await c.request("GET", "/api/files/" + encodePath(path) + "?raw=1");
  if (!resp.ok) await check(resp);
  return { text: await resp.text(), etag: resp.headers.get("ETag") || "" };
}

export async function writeText(c: Client, path: string, text: string, ifMatch?: string, createOnly = false): Promise<string> {
  const headers: Record<string, string> = { "Content-Type": "text/plain; charset=utf-8" };
  if (ifMatch) headers["If-Match"] = ifMatch;
  if (createOnly) headers["If-None-Match"] = "*";
  const resp = await c.request("PUT", "/api/files/" + encodePath(path) + "?raw=1", text, headers);
  return ((await check(resp)) as { etag: string }).etag;
}

export async function remove(c: Client, path: string, ifMatch?: string): Promise<void> {
  await check(await c.request("DELETE", "/api/files/" + encodePath(path), undefined, ifMatch ? { "If-Match": ifMatch } : {}));
}
