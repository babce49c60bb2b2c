import { DragEvent, useCallback, useEffect, useState } from "react";
import { ApiError, FileEntry, Listing, encodePath, list, readText, remove, writeText, API_BASE } from "./api";
import { client, message } from "./App";

type Upload = { name: string; loaded: number; total: number; error?: string; done?: boolean };

// upload sends one file in raw mode with a progress callback (fetch cannot
// report upload progress); a 401 refreshes the session and tries once more.
function upload(path: string, file: File, onProgress: (loaded: number) => void, retried = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", API_BASE + "/api/files/" + encodePath(path) + "?raw=1");
    xhr.setRequestHeader("Authorization", "Bearer " + (client.tokens?.accessToken || ""));
    if (file.type) xhr.setRequestHeader("Content-Type", file.type);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload was interrupted; try again."));
    xhr.onload = async () => {
      if (xhr.status === 401 && !retried) {
        try {
          await client.refresh();
          resolve(await upload(path, file, onProgress, true));
        } catch {
          reject(new ApiError(401, "session_expired", "Your session expired during the upload. Sign in again and retry."));
        }
        return;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = `hqd answered ${xhr.status}`;
      try {
        msg = JSON.parse(xhr.responseText).error.message;
      } catch {
        /* keep the status */
      }
      reject(new ApiError(xhr.status, "upload_failed", msg));
    };
    xhr.send(file);
  });
}

export function Files() {
  const [prefix, setPrefix] = useState("");
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const [open, setOpen] = useState<{ path: string; text: string; etag: string; original: string } | null>(null);
  const [conflict, setConflict] = useState<{ theirs: string; theirEtag: string } | null>(null);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [over, setOver] = useState(false);

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
  useEffect(() => {
    load(prefix);
  }, [prefix, load]);

  async function openFile(path: string) {
    setError("");
    try {
      const { text, etag } = await readText(client, path);
      setOpen({ path, text, etag, original: text });
      setConflict(null);
    } catch (e) {
      setError(message(e));
    }
  }

  async function save(force = false) {
    if (!open) return;
    setError("");
    try {
      const etag = await writeText(client, open.path, open.text, force ? conflict?.theirEtag : open.etag || undefined, !open.etag);
      setOpen({ ...open, etag, original: open.text });
      setConflict(null);
      load(prefix);
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        // Someone else saved first: show both versions, lose neither.
        try {
          const theirs = await readText(client, open.path);
          setConflict({ theirs: theirs.text, theirEtag: theirs.etag });
        } catch (e2) {
          setConflict({ theirs: "(the file was deleted)", theirEtag: "" });
        }
        return;
      }
      setError(message(e) + " Your text is still here.");
    }
  }

  async function newItem(kind: "file" | "folder") {
    const name = prompt(kind === "file" ? "New file name" : "New folder name");
    if (!name) return;
    const path = prefix + name.replace(/^\/+/, "");
    if (kind === "folder") {
      // S3 has no empty folders: a folder exists once it holds a file.
      setOpen({ path: path.replace(/\/?$/, "/") + "README.md", text: "", etag: "", original: "" });
      return;
    }
    setOpen({ path, text: "", etag: "", original: "" });
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
    const to = prompt("Rename to", f.path);
    if (!to || to === f.path) return;
    try {
      const { text } = await readText(client, f.path);
      await writeText(client, to, text, undefined, true); // copy: never over an existing file
      await remove(client, f.path, f.etag);
      load(prefix);
    } catch (e) {
      setError("Rename failed: " + message(e));
    }
  }

  async function download(f: FileEntry) {
    try {
      const resp = await client.request("GET", "/api/files/" + encodePath(f.path) + "?raw=1");
      if (!resp.ok) throw new ApiError(resp.status, "download", `hqd answered ${resp.status}`);
      const url = URL.createObjectURL(await resp.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = f.path.split("/").pop()!;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setError(message(e));
    }
  }

  function addFiles(files: FileList | File[]) {
    for (const file of Array.from(files)) {
      const entry: Upload = { name: file.name, loaded: 0, total: file.size };
      setUploads((u) => [...u, entry]);
      const update = (patch: Partial<Upload>) => setUploads((u) => u.map((x) => (x === entry ? Object.assign(entry, patch) && { ...entry } : x)));
      upload(prefix + file.name, file, (loaded) => update({ loaded }))
        .then(() => {
          update({ done: true, loaded: file.size });
          load(prefix);
        })
        .catch((e) => update({ error: message(e) }));
    }
  }

  function onDrop(e: DragEvent) {
    e.preventDefault();
    setOver(false);
    addFiles(e.dataTransfer.files);
  }

  const crumbs = prefix.split("/").filter(Boolean);
  if (open) {
    const dirty = open.text !== open.original;
    return (
      <section aria-label="Editor">
        <h1>{open.path}</h1>
        {error && <p className="error" role="alert">{error}</p>}
        {conflict ? (
          <>
            <p className="error" role="alert">Someone else saved this file while you were editing. Choose which version to keep; nothing is lost.</p>
            <div className="conflict">
              <div>
                <h2>Yours</h2>
                <textarea aria-label="Your version" value={open.text} onChange={(e) => setOpen({ ...open, text: e.target.value })} />
              </div>
              <div>
                <h2>Theirs</h2>
                <textarea aria-label="Their version" value={conflict.theirs} readOnly />
              </div>
            </div>
            <p className="row">
              <button className="primary" onClick={() => save(true)}>Keep mine</button>
              <button onClick={() => { setOpen({ ...open, text: conflict.theirs, etag: conflict.theirEtag, original: conflict.theirs }); setConflict(null); }}>Take theirs</button>
              <button onClick={async () => {
                const copy = open.path.replace(/(\.[^./]+)?$/, " (mine)$1");
                try { await writeText(client, copy, open.text, undefined, true); setError("Saved yours as " + copy); } catch (e) { setError(message(e)); }
              }}>Save mine as a copy</button>
            </p>
          </>
        ) : (
          <>
            <label htmlFor="editor">Contents</label>
            <textarea id="editor" value={open.text} onChange={(e) => setOpen({ ...open, text: e.target.value })} />
            <p className="row">
              <button className="primary" onClick={() => save()} disabled={!dirty && !!open.etag}>Save</button>
              <button onClick={() => { if (!dirty || confirm("Discard your changes?")) setOpen(null); }}>Close</button>
              {dirty && <span role="status">Unsaved changes</span>}
            </p>
          </>
        )}
      </section>
    );
  }
  return (
    <section aria-label="Files" onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={onDrop}>
      <nav aria-label="Folder" className="row">
        <button onClick={() => setPrefix("")}>HQ</button>
        {crumbs.map((c, i) => (
          <button key={i} onClick={() => setPrefix(crumbs.slice(0, i + 1).join("/") + "/")}>{c}</button>
        ))}
      </nav>
      <p className="row">
        <button onClick={() => newItem("file")}>New file</button>
        <button onClick={() => newItem("folder")}>New folder</button>
        <label className="row" style={{ margin: 0 }}>
          Upload <input type="file" multiple aria-label="Upload files" onChange={(e) => e.target.files && addFiles(e.target.files)} />
        </label>
      </p>
      <div className={"dropzone" + (over ? " over" : "")}>Drop files here to upload them to this folder</div>
      {uploads.length > 0 && (
        <ul aria-label="Uploads">
          {uploads.map((u, i) => (
            <li key={i}>
              {u.name} <progress max={u.total || 1} value={u.loaded} aria-label={"Upload of " + u.name} />{" "}
              {u.error ? <span className="error">{u.error}</span> : u.done ? "done" : Math.round((100 * u.loaded) / (u.total || 1)) + "%"}
            </li>
          ))}
        </ul>
      )}
      {error && <p className="error" role="alert">{error} <button onClick={() => load(prefix)}>Retry</button></p>}
      {loading && !listing && <p>Loading…</p>}
      {listing && listing.files.length === 0 && listing.folders.length === 0 && <p>This folder is empty. Create a file or drop some here.</p>}
      {listing && (listing.files.length > 0 || listing.folders.length > 0) && (
        <table>
          <thead><tr><th>Name</th><th>Size</th><th>Modified</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {listing.folders.map((f) => (
              <tr key={f}><td><button onClick={() => setPrefix(f)}>📁 {f.slice(prefix.length)}</button></td><td /><td /><td /></tr>
            ))}
            {listing.files.map((f) => (
              <tr key={f.path}>
                <td><button onClick={() => openFile(f.path)}>{f.path.slice(prefix.length)}</button></td>
                <td>{f.size}</td>
                <td>{new Date(f.lastModified).toLocaleString()}</td>
                <td className="row">
                  <button onClick={() => download(f)} aria-label={"Download " + f.path}>Download</button>
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
