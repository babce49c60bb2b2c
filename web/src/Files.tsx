import { DragEvent, KeyboardEvent, useCallback, useDeferredValue, useEffect, useEffectEvent, useMemo, useRef, useState } from "react";
import { ApiError, FileEntry, Listing, asText, encodePath, formatSize, list, move, readText, remove, writeText, API_BASE } from "./api";
import { client, message } from "./session";
import { Route, filesPath, filesURL, linkTo, navigate } from "./route";
import { dropDraft, loadDraft, saveDraft } from "./drafts";
import { PreviewKind, previewKind, render } from "./preview";

// Files larger than this open as a download card, never in the editor: a
// textarea with megabytes of text freezes the tab.
const EDITOR_MAX = 2 << 20;

type Upload = { id: number; name: string; loaded: number; total: number; error?: string; done?: string };
type Choice = "replace" | "keep" | "skip";

let uploadIds = 0;

// upload sends one file in raw mode with a progress callback (fetch cannot
// report upload progress); a 401 refreshes the session and tries once more.
// headers carry the condition: If-None-Match: * (create only) or If-Match.
function upload(path: string, file: File, headers: Record<string, string>, onProgress: (loaded: number) => void, retried = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", API_BASE + "/api/files/" + encodePath(path) + "?raw=1");
    xhr.setRequestHeader("Authorization", "Bearer " + (client.tokens?.accessToken || ""));
    if (file.type) xhr.setRequestHeader("Content-Type", file.type);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload was interrupted; try again."));
    xhr.onload = async () => {
      if (xhr.status === 401 && !retried) {
        try {
          await client.refresh();
          resolve(await upload(path, file, headers, onProgress, true));
        } catch {
          reject(new ApiError(401, "session_expired", "Your session expired during the upload. Sign in again and retry."));
        }
        return;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = `hqd answered ${xhr.status}`;
      let code = "upload_failed";
      try {
        const e = JSON.parse(xhr.responseText).error;
        msg = e.message;
        code = e.code;
      } catch {
        /* keep the status */
      }
      reject(new ApiError(xhr.status, code, msg));
    };
    xhr.send(file);
  });
}

// freeName finds "name (2).ext", "name (3).ext", … not in taken.
function freeName(path: string, taken: Set<string>): string {
  const m = /^(.*?)(\.[^./]*)?$/.exec(path)!;
  for (let i = 2; ; i++) {
    const candidate = `${m[1]} (${i})${m[2] || ""}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export function Files({ route }: { route: Route }) {
  const { prefix, file } = filesPath(route.path);
  if (file) return <Editor key={file} path={file} isNew={route.search.get("new") === "1"} />;
  return <Folder key={prefix} prefix={prefix} />;
}

function Breadcrumbs({ prefix }: { prefix: string }) {
  const crumbs = prefix.split("/").filter(Boolean);
  return (
    <nav aria-label="Folder" className="row crumbs">
      <a {...linkTo("/files/")}>HQ</a>
      {crumbs.map((c, i) => (
        <span key={i}>
          / <a {...linkTo(filesURL(crumbs.slice(0, i + 1).join("/") + "/"))}>{c}</a>
        </span>
      ))}
    </nav>
  );
}

function Folder({ prefix }: { prefix: string }) {
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [loading, setLoading] = useState(true);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [over, setOver] = useState(false);
  const [ask, setAsk] = useState<{ name: string; answer: (c: Choice) => void } | null>(null);
  const [filter, setFilter] = useState("");
  const filterRef = useRef<HTMLInputElement>(null);
  const newFile = useEffectEvent(() => newItem("file"));
  // Shortcuts of the listing: "/" to filter, "n" for a new file (when not
  // typing), the arrow keys to move through the names.
  useEffect(() => {
    const keys = (e: globalThis.KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey || t.closest("input, textarea, select, dialog")) return;
      if (e.key === "/") {
        e.preventDefault();
        filterRef.current?.focus();
      } else if (e.key === "n") {
        e.preventDefault();
        newFile();
      }
    };
    addEventListener("keydown", keys);
    return () => removeEventListener("keydown", keys);
  }, []);
  function moveThrough(e: KeyboardEvent<HTMLAnchorElement>) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const table = e.currentTarget.closest("table");
    if (!table) return;
    const links = Array.from(table.querySelectorAll<HTMLAnchorElement>("td:first-child a"));
    const i = links.indexOf(document.activeElement as HTMLAnchorElement);
    const next = links[e.key === "ArrowDown" ? Math.min(links.length - 1, i + 1) : Math.max(0, i - 1)];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  }
  const shown = (name: string) => !filter || name.toLowerCase().includes(filter.toLowerCase());
  const listingRef = useRef<Listing | null>(null); // for uploads' free names
  useEffect(() => {
    listingRef.current = listing;
  }, [listing]);
  const asking = useRef<Promise<unknown>>(Promise.resolve());

  const load = useCallback(async (p: string, token?: string) => {
    setLoading(true);
    setError("");
    try {
      const l = await list(client, p, token);
      setListing((prev) => (token && prev ? { files: [...prev.files, ...l.files], folders: [...prev.folders, ...l.folders], nextToken: l.nextToken } : l));
    } catch (e) {
      setError(message(e));
    } finally {
      setLoading(false);
    }
  }, []);
  // The first page, when the folder opens (the component is keyed by it).
  useEffect(() => {
    let live = true;
    list(client, prefix)
      .then((l) => live && setListing(l), (e) => live && setError(message(e)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [prefix]);

  function newItem(kind: "file" | "folder") {
    const name = prompt(kind === "file" ? "New file name" : "New folder name");
    if (!name) return;
    let path = prefix + name.replace(/^\/+/, "");
    if (kind === "folder") path = path.replace(/\/?$/, "/") + "README.md"; // S3 has no empty folders
    if (listing?.files.some((f) => f.path === path)) {
      setError(`A file named ${path.slice(prefix.length)} already exists here. Open it, or choose another name.`);
      return;
    }
    navigate(filesURL(path) + "?new=1");
  }

  async function del(f: FileEntry) {
    if (!confirm(`Delete ${f.path}? This cannot be undone.`)) return;
    try {
      await remove(client, f.path, f.etag);
      load(prefix);
    } catch (e) {
      setError(message(e));
    }
  }

  async function rename(f: FileEntry) {
    const to = prompt("Rename or move to", f.path);
    if (!to || to === f.path) return;
    setError("");
    setNotice("");
    const said = await renameTo(f, to);
    await load(prefix); // clears the error: what the rename said comes after
    if (said.error) setError(said.error);
    else setNotice(said.notice);
  }

  async function renameTo(f: FileEntry, to: string): Promise<{ error?: string; notice: string }> {
    try {
      try {
        await move(client, f.path, to, { ifMatch: f.etag });
      } catch (e) {
        if (!(e instanceof ApiError && e.code === "destination_exists")) throw e;
        if (!confirm(`${to} already exists. Replace it with ${f.path}?`)) return { notice: "Nothing was renamed." };
        await move(client, f.path, to, { ifMatch: f.etag, overwrite: true });
      }
      return { notice: `Renamed ${f.path} to ${to}.` };
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) return { error: `${f.path} was changed or removed since this list was loaded; nothing was renamed. The list is reloaded.`, notice: "" };
      return { error: "Rename failed: " + message(e), notice: "" };
    }
  }

  // choose asks what to do with an upload whose name exists; one question
  // at a time.
  function choose(name: string): Promise<Choice> {
    const next = asking.current.then(() => new Promise<Choice>((resolve) => setAsk({ name, answer: (c) => { setAsk(null); resolve(c); } })));
    asking.current = next;
    return next;
  }

  async function send(entry: Upload, file: File) {
    const update = (patch: Partial<Upload>) => setUploads((us) => us.map((u) => (u.id === entry.id ? { ...u, ...patch } : u)));
    const progress = (loaded: number) => update({ loaded });
    let path = prefix + file.name;
    try {
      try {
        await upload(path, file, { "If-None-Match": "*" }, progress); // never over an existing file unasked
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 412)) throw e;
        const c = await choose(file.name);
        if (c === "skip") return update({ done: "skipped: a file of that name exists" });
        if (c === "replace") {
          await upload(path, file, {}, progress);
        } else {
          const taken = new Set((listingRef.current?.files || []).map((f) => f.path));
          for (;;) {
            path = freeName(path, taken);
            try {
              await upload(path, file, { "If-None-Match": "*" }, progress);
              break;
            } catch (e2) {
              if (!(e2 instanceof ApiError && e2.status === 412)) throw e2;
              taken.add(path);
            }
          }
        }
      }
      update({ done: path === prefix + file.name ? "done" : "done, as " + path.slice(prefix.length), loaded: file.size });
      load(prefix);
    } catch (e) {
      update({ error: message(e) });
    }
  }

  function addFiles(files: FileList | File[]) {
    for (const file of Array.from(files)) {
      const entry: Upload = { id: ++uploadIds, name: file.name, loaded: 0, total: file.size };
      setUploads((u) => [...u, entry]);
      send(entry, file);
    }
  }

  function onDrop(e: DragEvent) {
    e.preventDefault();
    setOver(false);
    addFiles(e.dataTransfer.files);
  }

  return (
    <section aria-label="Files" onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={onDrop}>
      <Breadcrumbs prefix={prefix} />
      <h1>{prefix ? prefix.split("/").filter(Boolean).pop() : "Your HQ files"}</h1>
      <p className="row">
        <button onClick={() => newItem("file")} aria-keyshortcuts="n">New file</button>
        <button onClick={() => newItem("folder")}>New folder</button>
        <label className="row upload">
          Upload <input type="file" multiple aria-label="Upload files" onChange={(e) => e.target.files && addFiles(e.target.files)} />
        </label>
      </p>
      <p>
        <label htmlFor="filter" className="inline">Filter</label>{" "}
        <input id="filter" ref={filterRef} type="search" value={filter} onChange={(e) => setFilter(e.target.value)} aria-keyshortcuts="/" placeholder="name contains…" />
      </p>
      <div className={"dropzone" + (over ? " over" : "")}>Drop files here to upload them to this folder</div>
      {ask && <AskDialog name={ask.name} answer={ask.answer} />}
      {uploads.length > 0 && (
        <ul aria-label="Uploads">
          {uploads.map((u) => (
            <li key={u.id}>
              {u.name} <progress max={u.total || 1} value={u.loaded} aria-label={"Upload of " + u.name} />{" "}
              {u.error ? <span className="error">{u.error}</span> : u.done ? u.done : Math.round((100 * u.loaded) / (u.total || 1)) + "%"}
            </li>
          ))}
        </ul>
      )}
      {notice && <p className="notice" role="status">{notice}</p>}
      {error && <p className="error" role="alert">{error} <button onClick={() => load(prefix)}>Retry</button></p>}
      {loading && !listing && <p>Loading…</p>}
      {listing && listing.files.length === 0 && listing.folders.length === 0 && <p>This folder is empty. Create a file or drop some here.</p>}
      {listing && (listing.files.length > 0 || listing.folders.length > 0) && (
        <table className="files">
          <thead><tr><th>Name</th><th>Size</th><th className="wide">Modified</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {listing.folders.filter((f) => shown(f.slice(prefix.length))).map((f) => (
              <tr key={f}><td><a href={filesURL(f)} onClick={linkTo(filesURL(f)).onClick} onKeyDown={moveThrough}>📁 {f.slice(prefix.length)}</a></td><td /><td className="wide" /><td /></tr>
            ))}
            {listing.files.filter((f) => shown(f.path.slice(prefix.length))).map((f) => (
              <tr key={f.path}>
                <td className="name"><a href={filesURL(f.path)} onClick={linkTo(filesURL(f.path)).onClick} onKeyDown={moveThrough}>{f.path.slice(prefix.length)}</a></td>
                <td>{formatSize(f.size)}</td>
                <td className="wide">{new Date(f.lastModified).toLocaleString()}</td>
                <td className="row actions">
                  <button onClick={() => download(f.path, setError)} aria-label={"Download " + f.path}>Download</button>
                  <button onClick={() => rename(f)} aria-label={"Rename " + f.path}>Rename</button>
                  <button onClick={() => del(f)} aria-label={"Delete " + f.path}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {listing?.nextToken && <button onClick={() => load(prefix, listing.nextToken)} disabled={loading}>Load more</button>}
    </section>
  );
}

// Preview shows a rendered Markdown file, or a highlighted YAML, JSON or
// Lean one, beside the editor; it follows the text as it is typed (on the
// deferred value, so typing stays quick in a long file).
function Preview({ kind, text }: { kind: PreviewKind; text: string }) {
  const deferred = useDeferredValue(text);
  const html = useMemo(() => render(kind, deferred), [kind, deferred]);
  return (
    <section aria-label="Preview" className={"preview preview-" + kind}>
      <h2 className="sr-only">Preview</h2>
      <div dangerouslySetInnerHTML={{ __html: html }} />
    </section>
  );
}

// AskDialog asks what to do with an upload whose name is taken.
// It is a native modal <dialog>: focus moves into it and stays there, and
// Escape (its cancel) skips the file.
function AskDialog({ name, answer }: { name: string; answer: (c: Choice) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="ask-title" className="notice dialog" onCancel={(e) => { e.preventDefault(); answer("skip"); }}>
      <p id="ask-title">A file named <strong>{name}</strong> already exists in this folder.</p>
      <p className="row">
        <button onClick={() => answer("replace")}>Replace</button>
        <button onClick={() => answer("keep")}>Keep both</button>
        <button onClick={() => answer("skip")}>Skip</button>
      </p>
    </dialog>
  );
}

async function download(path: string, setError: (s: string) => void) {
  try {
    const resp = await client.request("GET", "/api/files/" + encodePath(path) + "?raw=1");
    if (!resp.ok) throw new ApiError(resp.status, "download", `hqd answered ${resp.status}`);
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = path.split("/").pop()!;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    setError(message(e));
  }
}

type Opened =
  | { kind: "text"; text: string; etag: string; original: string; restored?: { at: number; stale: boolean } }
  | { kind: "binary"; size: number; type: string; preview?: string; why: string }
  | { kind: "missing" };

// Editor opens one file: text in the editor (with its draft, if one was
// kept), anything binary or over 2 MiB as a card with a download.
function Editor({ path, isNew }: { path: string; isNew: boolean }) {
  const folder = path.slice(0, path.lastIndexOf("/") + 1);
  const name = path.slice(folder.length);
  const draftName = "file:" + path;
  const [open, setOpen] = useState<Opened | null>(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [conflict, setConflict] = useState<{ theirs: string; theirEtag: string; created: boolean } | null>(null);
  const [roomless, setRoomless] = useState(false);
  // While a save is on its way, Save and Close wait for it: closing then
  // would ask to discard text that is being saved.
  const [saving, setSaving] = useState(false);
  const alive = useRef(true);
  useEffect(
    () => () => {
      alive.current = false;
    },
    [],
  );

  useEffect(() => {
    let preview = "";
    (async () => {
      const draft = loadDraft(draftName);
      if (isNew) {
        setOpen({ kind: "text", text: draft?.text ?? "", etag: "", original: "", restored: draft ? { at: draft.at, stale: false } : undefined });
        return;
      }
      try {
        const resp = await client.request("GET", "/api/files/" + encodePath(path) + "?raw=1");
        if (resp.status === 404) {
          if (draft) setOpen({ kind: "text", text: draft.text, etag: draft.etag, original: "", restored: { at: draft.at, stale: true } });
          else setOpen({ kind: "missing" });
          return;
        }
        if (!resp.ok) throw new ApiError(resp.status, "read", `hqd answered ${resp.status}`);
        const size = Number(resp.headers.get("Content-Length") || 0);
        const type = resp.headers.get("Content-Type") || "application/octet-stream";
        const etag = resp.headers.get("ETag") || "";
        if (size > EDITOR_MAX) {
          await resp.body?.cancel();
          setOpen({ kind: "binary", size, type, why: `It is ${formatSize(size)}; files over ${formatSize(EDITOR_MAX)} open as a download.` });
          return;
        }
        const bytes = await resp.arrayBuffer();
        const text = asText(bytes);
        if (text === null) {
          if (type.startsWith("image/") && !type.includes("svg")) preview = URL.createObjectURL(new Blob([bytes], { type }));
          setOpen({ kind: "binary", size: bytes.byteLength, type, preview, why: "It is not text, so it opens as a download." });
          return;
        }
        if (draft && draft.text !== text) {
          // The draft is saved against the version it was typed on: if the
          // file changed since, saving shows both versions.
          setOpen({ kind: "text", text: draft.text, etag: draft.etag, original: text, restored: { at: draft.at, stale: draft.etag !== etag } });
        } else {
          if (draft) dropDraft(draftName);
          setOpen({ kind: "text", text, etag, original: text });
        }
      } catch (e) {
        setError(message(e));
      }
    })();
    return () => {
      if (preview) URL.revokeObjectURL(preview);
    };
  }, [path, draftName, isNew]);

  function edit(text: string) {
    if (open?.kind !== "text") return;
    setOpen({ ...open, text });
    if (text === open.original && open.etag) dropDraft(draftName);
    else setRoomless(!saveDraft(draftName, { text, etag: open.etag }));
  }

  async function save(force = false) {
    if (open?.kind !== "text" || saving) return;
    setError("");
    setSaving(true);
    try {
      const etag = await writeText(client, path, open.text, force ? conflict?.theirEtag || undefined : open.etag || undefined, !open.etag && !(force && conflict?.theirEtag));
      dropDraft(draftName);
      setOpen({ kind: "text", text: open.text, etag, original: open.text });
      setConflict(null);
      setNotice("Saved.");
      if (isNew && alive.current) navigate(filesURL(path), true); // no longer ?new=1
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        // Someone else saved first (or made a file of this name): show both
        // versions, lose neither.
        try {
          const theirs = await readText(client, path);
          setConflict({ theirs: theirs.text, theirEtag: theirs.etag, created: !open.etag });
        } catch {
          setConflict({ theirs: "(the file was deleted)", theirEtag: "", created: false });
        }
        return;
      }
      setError(message(e) + " Your text is still here.");
    } finally {
      setSaving(false);
    }
  }

  function close() {
    if (open?.kind === "text" && open.text !== open.original) {
      if (!confirm("Discard your changes?")) return;
      dropDraft(draftName);
    }
    navigate(filesURL(folder));
  }

  // Ctrl/Cmd-S saves wherever the focus is while a text file is open (and
  // never lets the browser save the page instead).
  const saveNow = useEffectEvent(() => save());
  useEffect(() => {
    const keys = (e: globalThis.KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
        e.preventDefault();
        saveNow();
      }
    };
    addEventListener("keydown", keys);
    return () => removeEventListener("keydown", keys);
  }, []);

  if (!open) {
    return (
      <section aria-label="Editor">
        <Breadcrumbs prefix={folder} />
        <h1>{name}</h1>
        {error ? <p className="error" role="alert">{error}</p> : <p>Loading…</p>}
      </section>
    );
  }
  if (open.kind === "missing") {
    return (
      <section aria-label="Editor">
        <Breadcrumbs prefix={folder} />
        <h1>{name}</h1>
        <p className="error" role="alert">There is no file {path}. It may have been renamed or deleted.</p>
      </section>
    );
  }
  if (open.kind === "binary") {
    return (
      <section aria-label="File">
        <Breadcrumbs prefix={folder} />
        <h1>{name}</h1>
        <div className="card">
          {open.preview && <img src={open.preview} alt={"Preview of " + name} />}
          <p>{formatSize(open.size)} · {open.type}</p>
          <p>{open.why}</p>
          {error && <p className="error" role="alert">{error}</p>}
          <p className="row">
            <button className="primary" onClick={() => download(path, setError)}>Download</button>
            <a {...linkTo(filesURL(folder))}>Back to the folder</a>
          </p>
        </div>
      </section>
    );
  }
  const dirty = open.text !== open.original || !open.etag;
  const kind = previewKind(path);
  const when = open.restored ? new Date(open.restored.at).toLocaleTimeString() : "";
  return (
    <section aria-label="Editor">
      <Breadcrumbs prefix={folder} />
      <h1>{name}</h1>
      {open.restored && (
        <p className="notice" role="status">
          Your unsaved changes from {when} were kept and are shown here.
          {open.restored.stale && " The file has changed since; saving will show both versions."}{" "}
          <button onClick={() => { dropDraft(draftName); setOpen({ kind: "text", text: open.original, etag: open.etag, original: open.original }); if (isNew) navigate(filesURL(folder)); }}>Discard them</button>
        </p>
      )}
      {roomless && <p className="error" role="alert">The browser has no room to keep a copy of this text: save it before closing the tab.</p>}
      {error && <p className="error" role="alert">{error}</p>}
      {conflict ? (
        <>
          <p className="error" role="alert">
            {conflict.created
              ? `A file named ${name} already exists here (made elsewhere). Choose which version to keep; nothing is lost.`
              : "Someone else saved this file while you were editing. Choose which version to keep; nothing is lost."}
          </p>
          <div className="conflict">
            <div>
              <h2>Yours</h2>
              <textarea aria-label="Your version" value={open.text} onChange={(e) => edit(e.target.value)} />
            </div>
            <div>
              <h2>Theirs</h2>
              <textarea aria-label="Their version" value={conflict.theirs} readOnly />
            </div>
          </div>
          <p className="row">
            <button className="primary" onClick={() => save(true)}>Keep mine</button>
            <button onClick={() => { dropDraft(draftName); setOpen({ kind: "text", text: conflict.theirs, etag: conflict.theirEtag, original: conflict.theirs }); setConflict(null); }}>Take theirs</button>
            <button onClick={async () => {
              const copy = path.replace(/(\.[^./]+)?$/, " (mine)$1");
              try { await writeText(client, copy, open.text, undefined, true); setError("Saved yours as " + copy); } catch (e) { setError(message(e)); }
            }}>Save mine as a copy</button>
          </p>
        </>
      ) : (
        <>
          <div className={kind ? "with-preview" : undefined}>
            <div>
              <label htmlFor="editor">Contents</label>
              <textarea id="editor" value={open.text} onChange={(e) => edit(e.target.value)} />
            </div>
            {kind && <Preview kind={kind} text={open.text} />}
          </div>
          <p className="row">
            <button className="primary" onClick={() => save()} disabled={!dirty || saving} aria-keyshortcuts="Control+S Meta+S">{saving ? "Saving…" : "Save"}</button>
            <button onClick={close} disabled={saving}>Close</button>
            {dirty ? <span role="status">Unsaved changes</span> : notice && <span role="status">{notice}</span>}
          </p>
        </>
      )}
    </section>
  );
}
