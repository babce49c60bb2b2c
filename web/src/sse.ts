// A Server-Sent Events client over fetch: unlike EventSource it sends the
// access token in a header, and it resumes after a dropped connection with
// Last-Event-ID, so no event is lost or shown twice.
import { ApiError, Client, check } from "./api";

// EventData is one event's data (SPEC §6.2): the common fields, and those
// of progress, diagnostic, result and done events.
export type EventData = {
  stage?: string;
  kind?: string;
  msg?: string;
  at?: string;
  done?: number;
  total?: number;
  severity?: string;
  file?: string;
  line?: number;
  col?: number;
  result?: unknown;
};

// DoneData is the final event's data.
export type DoneData = {
  ok: boolean;
  verified: boolean;
  exitCode: number | null;
  durationMs: number;
  cached: boolean;
  cancelled: boolean;
  limit: string;
};

export type JobEvent = { id: number; type: string; data: EventData };

// Parser turns stream text into events; it keeps partial lines between chunks.
export class Parser {
  buf = "";
  id = 0;
  type = "";
  data: string[] = [];
  retry = 3000;

  feed(chunk: string): JobEvent[] {
    this.buf += chunk;
    const out: JobEvent[] = [];
    let i: number;
    while ((i = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, "");
      this.buf = this.buf.slice(i + 1);
      if (line === "") {
        if (this.type && this.data.length) {
          const text = this.data.join("\n");
          let data: EventData;
          try {
            data = JSON.parse(text);
          } catch {
            data = { msg: text }; // not JSON: keep the text
          }
          out.push({ id: this.id, type: this.type, data });
        }
        this.type = "";
        this.data = [];
      } else if (line.startsWith(":")) {
        // a heartbeat
      } else {
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "id") this.id = Number(value);
        else if (field === "event") this.type = value;
        else if (field === "data") this.data.push(value);
        else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
      }
    }
    return out;
  }
}

export type FollowOptions = {
  signal?: AbortSignal;
  onStatus?: (s: "connected" | "reconnecting") => void;
  sleep?: (ms: number) => Promise<void>;
  maxRetries?: number;
};

// follow streams a job's events to onEvent until its done event, resuming
// after drops. It returns the last event id seen.
export async function follow(c: Client, jobId: string, onEvent: (e: JobEvent) => void, opt: FollowOptions = {}): Promise<number> {
  let last = 0;
  let failures = 0;
  const sleep = opt.sleep || ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  for (;;) {
    if (opt.signal?.aborted) return last;
    const p = new Parser();
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last > 0) headers["Last-Event-ID"] = String(last);
      const resp = await c.request("GET", `/api/jobs/${jobId}/events`, undefined, headers);
      if (!resp.ok) await check(resp);
      opt.onStatus?.("connected");
      failures = 0;
      const reader = resp.body!.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of p.feed(dec.decode(value, { stream: true }))) {
          if (ev.id <= last) continue; // never twice
          last = ev.id;
          if (ev.type === "shutdown") continue;
          onEvent(ev);
          if (ev.type === "done") return last;
        }
      }
    } catch (e) {
      if (opt.signal?.aborted) return last;
      if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429) throw e;
      failures++;
      if (failures > (opt.maxRetries ?? 50)) throw e;
    }
    opt.onStatus?.("reconnecting");
    await sleep(Math.min(p.retry * Math.max(1, failures), 15000));
  }
}
