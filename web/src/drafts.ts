// Drafts: text the user typed and has not saved, kept in the tab's
// sessionStorage as they type, so that going to another screen, Back or a
// reload never loses it. A draft goes when it is saved or discarded, and
// all of them when the user signs out (the next person at this tab must not
// see them).
const PREFIX = "hq.draft:";

export type Draft = { text: string; etag: string; at: number };

function store(): Storage | undefined {
  return typeof sessionStorage !== "undefined" ? sessionStorage : undefined;
}

export function loadDraft(name: string): Draft | null {
  try {
    const v = store()?.getItem(PREFIX + name);
    return v ? (JSON.parse(v) as Draft) : null;
  } catch {
    return null;
  }
}

// saveDraft keeps the text; it answers false when the browser has no room
// for it (the caller then warns that closing the tab would lose it).
export function saveDraft(name: string, d: Omit<Draft, "at">): boolean {
  try {
    store()?.setItem(PREFIX + name, JSON.stringify({ ...d, at: Date.now() }));
    return true;
  } catch {
    return false;
  }
}

export function dropDraft(name: string) {
  store()?.removeItem(PREFIX + name);
}

export function draftNames(): string[] {
  const s = store();
  if (!s) return [];
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const k = s.key(i);
    if (k?.startsWith(PREFIX)) out.push(k.slice(PREFIX.length));
  }
  return out;
}

export function clearDrafts() {
  for (const n of draftNames()) dropDraft(n);
}
