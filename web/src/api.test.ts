import { describe, expect, it } from "vitest";
import { ApiError, Client, asText, formatSize, refreshDelay, refused } from "./api";
import { Parser, follow } from "./sse";

// fakeFetch answers requests from a list of handlers, recording them.
type Init = RequestInit & { headers: Record<string, string> };

function fakeFetch(handler: (url: string, init: Init) => Response | Promise<Response>) {
  const calls: { url: string; init: Init }[] = [];
  const f = (async (url: RequestInfo | URL, init: Init) => {
    calls.push({ url: String(url), init });
    return handler(String(url), init);
  }) as typeof fetch;
  return { f, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

describe("token refresh timing", () => {
  it("refreshes a minute before expiry for hour-long tokens", () => {
    expect(refreshDelay(3_600_000, 0)).toBe(3_540_000);
  });
  it("refreshes at half-life for short tokens and never in under a second", () => {
    expect(refreshDelay(60_000, 0)).toBe(30_000);
    expect(refreshDelay(500, 0)).toBe(1000);
    expect(refreshDelay(0, 10)).toBe(1000);
  });
});

describe("Client", () => {
  it("refreshes once on a 401 and retries with the new token", async () => {
    let token = "old";
    const { f, calls } = fakeFetch((url, init) => {
      if (url.endsWith("/api/auth/refresh")) {
        token = "new";
        return json(200, { accessToken: "new", idToken: "id", expiresIn: 3600 });
      }
      return init.headers.Authorization === "Bearer new" ? json(200, { files: [], folders: [] }) : json(401, { error: { code: "unauthorized", message: "no" } });
    });
    const c = new Client("", f);
    c.tokens = { accessToken: "old", idToken: "", refreshToken: "r", expiresAt: Date.now() + 1000 };
    const out = await c.json<{ files: unknown[] }>("GET", "/api/files");
    expect(out.files).toEqual([]);
    expect(calls.map((x) => x.url)).toEqual(["/api/files", "/api/auth/refresh", "/api/files"]);
    expect(token).toBe("new");
    clearTimeout(c.timer);
  });

  it("says the session expired when the refresh is refused", async () => {
    const { f } = fakeFetch((url) => (url.endsWith("/refresh") ? json(401, { error: { code: "invalid_refresh_token", message: "x" } }) : json(401, {})));
    const c = new Client("", f);
    c.tokens = { accessToken: "a", idToken: "", refreshToken: "r", expiresAt: 0 };
    await expect(c.json("GET", "/api/files")).rejects.toMatchObject({ code: "session_expired" });
    expect(c.tokens).toBeUndefined();
  });

  it("shares one refresh between concurrent callers", async () => {
    let refreshes = 0;
    const { f } = fakeFetch(async () => {
      refreshes++;
      await new Promise((r) => setTimeout(r, 10));
      return json(200, { accessToken: "n", idToken: "i", expiresIn: 3600 });
    });
    const c = new Client("", f);
    c.tokens = { accessToken: "a", idToken: "", refreshToken: "r", expiresAt: 0 };
    await Promise.all([c.refresh(), c.refresh(), c.refresh()]);
    expect(refreshes).toBe(1);
    clearTimeout(c.timer);
  });

  it("turns error answers into messages with Retry-After", async () => {
    const { f } = fakeFetch(() => json(429, { error: { code: "queue_full", message: "the job queue is full" } }, { "Retry-After": "10" }));
    const c = new Client("", f);
    const err = (await c.json("POST", "/api/verify", {}).catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("queue_full");
    expect(err.message).toContain("try again in 10 s");
  });

  it("reports a server that is down without losing the request", async () => {
    const c = new Client("", () => Promise.reject(new TypeError("fetch failed")));
    await expect(c.json("GET", "/api/files")).rejects.toMatchObject({ code: "network" });
  });
});

describe("SSE", () => {
  it("parses events across chunk boundaries and skips heartbeats", () => {
    const p = new Parser();
    const a = p.feed('retry: 3000\n\nid: 1\nevent: log\ndata: {"msg":"a"}\n\n: keep-alive\n\nid: 2\nev');
    const b = p.feed('ent: done\ndata: {"ok":true}\n\n');
    expect(a).toEqual([{ id: 1, type: "log", data: { msg: "a" } }]);
    expect(b).toEqual([{ id: 2, type: "done", data: { ok: true } }]);
    expect(p.retry).toBe(3000);
  });

  it("resumes after a drop with Last-Event-ID and never repeats an event", async () => {
    const enc = new TextEncoder();
    let n = 0;
    let pulls = 0;
    const { f, calls } = fakeFetch(() => {
      n++;
      const body =
        n === 1
          ? // the first connection drops after two events
            new ReadableStream<Uint8Array>({
              pull(ctl) {
                if (pulls++ === 0) ctl.enqueue(enc.encode('id: 1\nevent: log\ndata: {"msg":"one"}\n\nid: 2\nevent: log\ndata: {"msg":"two"}\n\n'));
                else ctl.error(new TypeError("network"));
              },
            })
          : new ReadableStream({
              start(ctl) {
                // a server that resent event 2 would not be believed
                ctl.enqueue(enc.encode('id: 2\nevent: log\ndata: {"msg":"two"}\n\nid: 3\nevent: done\ndata: {"ok":true}\n\n'));
                ctl.close();
              },
            });
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    });
    const c = new Client("", f);
    c.tokens = { accessToken: "t", idToken: "", refreshToken: "", expiresAt: 0 };
    const seen: number[] = [];
    const last = await follow(c, "JOB", (e) => seen.push(e.id), { sleep: async () => {} });
    expect(seen).toEqual([1, 2, 3]);
    expect(last).toBe(3);
    expect(calls[1].init.headers["Last-Event-ID"]).toBe("2");
    expect(calls[0].init.headers["Authorization"]).toBe("Bearer t");
  });

  it("gives up on a job that is not the user's", async () => {
    const { f } = fakeFetch(() => json(404, { error: { code: "not_found", message: "no such job" } }));
    const c = new Client("", f);
    await expect(follow(c, "X", () => {}, { sleep: async () => {} })).rejects.toMatchObject({ status: 404 });
  });
});

describe("a session that cannot be refreshed", () => {
  const resp = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  const memory = () => {
    const m = new Map<string, string>();
    return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k) } as unknown as Storage;
  };
  it("is kept when hqd cannot be reached, and ended when the token is refused", async () => {
    const store = memory();
    store.setItem("hq.refreshToken", "rt");
    const offline = new Client("", async () => {
      throw new TypeError("Failed to fetch");
    }, store);
    expect(await offline.resume()).toBe(true);
    expect(store.getItem("hq.refreshToken")).toBe("rt");
    clearTimeout(offline.timer);
    const refusing = new Client("", async () => resp(401, { error: { code: "invalid_refresh_token", message: "sign in again" } }), store);
    expect(await refusing.resume()).toBe(false);
    expect(store.getItem("hq.refreshToken")).toBe(null);
  });
  it("tells refusals from failures", () => {
    expect(refused(new ApiError(401, "x", "x"))).toBe(true);
    expect(refused(new ApiError(0, "network", "x"))).toBe(false);
    expect(refused(new ApiError(503, "x", "x"))).toBe(false);
    expect(refused(new ApiError(429, "x", "x"))).toBe(false);
  });
});

describe("files", () => {
  it("shows sizes as people read them", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(1536)).toBe("1.5 KB");
    expect(formatSize(20_000_000)).toBe("20 MB");
  });
  it("never decodes a binary file as text", () => {
    expect(asText(new TextEncoder().encode("# notes ✓").buffer)).toBe("# notes ✓");
    expect(asText(new Uint8Array([0x89, 0x50, 0x4e, 0x47]).buffer)).toBe(null);
    expect(asText(new Uint8Array([0x61, 0, 0x62]).buffer)).toBe(null);
  });
});
