package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"golang.org/x/text/unicode/norm"

	"github.com/quantapix/hqd/internal/atomicfile"
	"github.com/quantapix/hqd/internal/hqpath"
)

// remote is the user's HQ root, through hqd (api) or straight on S3
// (direct).
type remote interface {
	list(ctx context.Context) ([]remoteFile, error)
	get(ctx context.Context, path string, w io.Writer) (remoteFile, error)
	put(ctx context.Context, path, name string, cond putCond, progress func(int64)) (remoteFile, error)
	remove(ctx context.Context, path, ifMatch string) error
}

// testHookPlanned runs between the plan and its execution (tests stage a
// concurrent writer there).
var testHookPlanned func()

func cmdSync(ctx context.Context, args []string, e env) error {
	fs := newFlags("sync", "DIR [--dry-run] [--direct] [--jobs N] [--json]", e)
	dryRun := fs.Bool("dry-run", false, "print what would be done, and do nothing")
	useDirect := fs.Bool("direct", false, "move bytes straight to and from S3 with the session's STS credentials, not through hqd")
	s3Endpoint := fs.String("s3-endpoint", e.getenv("HQ_S3_ENDPOINT"), "with --direct: an S3-compatible endpoint (e.g. MinIO) instead of AWS's; $HQ_S3_ENDPOINT")
	jobs := fs.Int("jobs", 8, "transfers at once")
	asJSON := fs.Bool("json", false, "print one JSON object per line: each action, then a summary")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *jobs < 1 || *jobs > 64 {
		return fmt.Errorf("--jobs %d: choose 1 to 64", *jobs)
	}
	dir, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	switch st, err := os.Stat(dir); {
	case errors.Is(err, os.ErrNotExist) && !*dryRun:
		// A first sync on a new machine: the folder fills from the remote side.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("making %s: %w", pos[0], err)
		}
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist (a sync would make it and fill it from the remote side)", pos[0])
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a folder", pos[0])
	}
	sessions, err := newSessions(e)
	if err != nil {
		return err
	}
	sess, err := sessions.fresh(ctx, false)
	if err != nil {
		return err
	}
	var rem remote
	if *useDirect {
		if rem, err = newDirect(ctx, sessions, *s3Endpoint, *jobs+2); err != nil {
			return err
		}
	} else {
		rem = &api{s: sessions, base: sess.Endpoint, prefix: sess.Prefix, http: newHTTPClient(*jobs + 2)}
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(dir, sess)
	if err != nil {
		return err
	}
	ign, err := loadIgnore(dir)
	if err != nil {
		return err
	}
	s := &syncer{dir: dir, rem: rem, st: st, ign: ign, jobs: *jobs, dryRun: *dryRun, prefix: sess.Prefix,
		rep: &reporter{out: e.stdout, asJSON: *asJSON}, e: e}
	return s.run(ctx)
}

// loadIgnore reads DIR/.hqignore (gitignore syntax) if there is one.
func loadIgnore(dir string) (gitignore.Matcher, error) {
	var ps []gitignore.Pattern
	f, err := os.Open(filepath.Join(dir, ".hqignore"))
	if errors.Is(err, os.ErrNotExist) {
		return gitignore.NewMatcher(nil), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .hqignore: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, nil))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading .hqignore: %w", err)
	}
	return gitignore.NewMatcher(ps), nil
}

// syncer is one run of hq sync.
type syncer struct {
	dir    string
	rem    remote
	ign    gitignore.Matcher
	jobs   int
	dryRun bool
	prefix string
	rep    *reporter
	e      env

	saveMu    sync.Mutex // one save at a time
	mu        sync.Mutex // guards st, dirty, placed and the tallies below
	st        *state
	dirty     bool
	placed    bool           // a file was written here since the last save
	done      map[string]int // action → count
	conflicts []event        // conflicts left, as reported
	problems  int            // errors
	again     int            // paths that changed during the sync
	// alone holds paths (files, or folders ending in /) the sync must not
	// touch on either side: unreadable here, links and other non-regular
	// files here, names the other side cannot hold. Never taken for deleted.
	alone map[string]bool
	// localDirs are the folders here: a remote file of such a name cannot
	// come down.
	localDirs map[string]bool
	emptied   []string // folders a local delete may have left empty
	// stop ends the transfers early, with the reason; runCtx is theirs.
	stop   context.CancelCauseFunc
	runCtx context.Context
}

// localFile is a file in DIR as the scan found it.
type localFile struct {
	size, mtime int64
	d           digest // set when hashed
	hashed      bool
}

// op is what the plan does with one path.
type op int

const (
	opUpload       op = iota // local → remote
	opDownload               // remote → local
	opDeleteRemote           // deleted here → delete there
	opDeleteLocal            // deleted there → delete here
	opConflict               // both changed: keep both
	opRecord                 // both hold the same bytes: remember that
	opForget                 // gone from both
	opTouch                  // same bytes, new mtime
)

var opNames = map[op]string{opUpload: "upload", opDownload: "download", opDeleteRemote: "delete-remote", opDeleteLocal: "delete-local",
	opConflict: "conflict", opRecord: "same", opForget: "forget", opTouch: "touch"}

type task struct {
	op     op
	path   string
	local  *localFile  // nil when absent here
	remote *remoteFile // nil when absent there
	base   *entry      // the last sync's entry, nil when none
	create bool        // upload with If-None-Match: *
}

func (s *syncer) run(ctx context.Context) error {
	_ = os.RemoveAll(filepath.Join(s.dir, stateDir, "tmp")) // a killed run's partial downloads
	if err := os.MkdirAll(filepath.Join(s.dir, stateDir, "tmp"), 0o700); err != nil {
		return err
	}
	s.done = map[string]int{}
	s.alone, s.localDirs = map[string]bool{}, map[string]bool{}
	skip := map[string]bool{}
	for _, en := range s.st.Files {
		if en.Conflict != "" {
			skip[en.Conflict] = true
		}
	}
	local, err := s.scanLocal(skip)
	if err != nil {
		return err
	}
	remoteFiles, err := s.rem.list(ctx)
	if err != nil {
		return fmt.Errorf("listing your HQ files: %w", err)
	}
	remote := map[string]*remoteFile{}
	for i := range remoteFiles {
		r := &remoteFiles[i]
		if strings.HasSuffix(r.Path, "/") {
			continue // a folder marker some S3 tools make, not a file
		}
		if err := hqpath.Check(s.prefix, r.Path); err != nil {
			// hqd refuses such names; an S3 key can hold anything. It is
			// never used as a local path.
			s.problem(fmt.Sprintf("%q", r.Path), fmt.Sprintf("a remote name that cannot be a file here (%v): left alone", err))
			continue
		}
		if s.aloneHere(r.Path) {
			// A link or an unreadable file here where there is a file there:
			// not in step, and said so (once for each such file).
			s.problem(r.Path, "left alone: here its path is a link, a special or unreadable file, or under one")
			continue
		}
		if skip[r.Path] || s.leaveAlone(r.Path) {
			continue
		}
		if s.localDirs[r.Path] {
			s.problem(r.Path, "a file there, a folder here: left alone on both sides (rename one of them)")
			s.alone[r.Path] = true
			continue
		}
		remote[r.Path] = r
	}
	if s.foldsNames() {
		s.leaveClashesAlone(local, remote)
	}
	if err := s.hash(ctx, local); err != nil {
		return err
	}
	tasks := s.plan(local, remote)
	if testHookPlanned != nil {
		testHookPlanned()
	}
	if s.dryRun {
		for _, t := range tasks {
			if t.op != opTouch && t.op != opForget {
				s.rep.report(event{Action: opNames[t.op], Path: t.path, Detail: "dry run"})
			}
		}
		return s.finish()
	}
	var total int64
	for _, t := range tasks {
		switch {
		case t.op == opUpload:
			total += t.local.size
		case t.op == opDownload || t.op == opConflict:
			total += t.remote.size()
		}
	}
	s.rep.bar = &bar{}
	if !s.rep.asJSON {
		s.rep.bar = newBar(s.e, total, "sync")
	}
	stopSaver := s.saveEvery(time.Second)
	ctx, s.stop = context.WithCancelCause(ctx)
	defer s.stop(nil)
	s.runCtx = ctx
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.jobs)
	for _, t := range tasks {
		g.Go(func() error {
			s.exec(gctx, t)
			return gctx.Err()
		})
	}
	werr := g.Wait()
	for _, d := range s.emptied { // after the transfers, which may fill them again
		s.removeEmptyParents(d)
	}
	s.rep.bar.finish()
	stopSaver()
	if err := s.save(); err != nil {
		return err
	}
	if cause := context.Cause(ctx); errors.Is(cause, errSessionEnded) {
		return fmt.Errorf("sync stopped (what was done is kept): %w", cause)
	}
	if werr != nil {
		return fmt.Errorf("sync interrupted (what was done is kept; run it again): %w", werr)
	}
	return s.finish()
}

// testFoldNames makes tests treat DIR's disk as one that folds names.
var testFoldNames bool

// foldsNames says whether DIR's file system takes names that differ only
// in case (or in Unicode normalization, as macOS's do) for one name: a
// probe file in DIR/.hq/tmp, looked up under another spelling.
func (s *syncer) foldsNames() bool {
	if testFoldNames {
		return true
	}
	tmp := filepath.Join(s.dir, stateDir, "tmp")
	for _, spell := range [][2]string{{"Probe-Case", "probe-case"}, {"probe-\u00e9", "probe-e\u0301"}} {
		f, err := os.Create(filepath.Join(tmp, spell[0]))
		if err != nil {
			continue
		}
		f.Close()
		_, err = os.Lstat(filepath.Join(tmp, spell[1]))
		os.Remove(filepath.Join(tmp, spell[0]))
		if err == nil {
			return true
		}
	}
	return false
}

// leaveClashesAlone, on a disk that folds names, finds paths that differ
// only in case or normalization (A.md and a.md remote, or a.md here and
// A.md there): the disk holds one file for them, so mirroring either would
// end with the other taken for deleted. They are left alone on both sides
// and reported.
func (s *syncer) leaveClashesAlone(local map[string]*localFile, remote map[string]*remoteFile) {
	groups := map[string]map[string]bool{}
	add := func(p string) {
		k := strings.ToLower(norm.NFC.String(p))
		if groups[k] == nil {
			groups[k] = map[string]bool{}
		}
		groups[k][p] = true
	}
	for p := range local {
		add(p)
	}
	for p := range remote {
		add(p)
	}
	for p := range s.st.Files {
		add(p)
	}
	for _, names := range groups {
		if len(names) < 2 {
			continue
		}
		list := slices.Sorted(maps.Keys(names))
		for _, p := range list {
			s.alone[p] = true
			delete(local, p)
			delete(remote, p)
		}
		s.problem(list[0], fmt.Sprintf("names that differ only in case or accents (%s): this disk holds one file for them; left alone on both sides (rename one)", strings.Join(list, ", ")))
	}
}

// size is a remote file's size, 0 for nil.
func (r *remoteFile) size() int64 {
	if r == nil {
		return 0
	}
	return r.Size
}

// scanLocal walks DIR: regular files only, .hq/, ignored paths and
// conflict copies left out; names the server would refuse are reported.
func (s *syncer) scanLocal(skip map[string]bool) (map[string]*localFile, error) {
	out := map[string]*localFile{}
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if p == s.dir {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if err != nil {
			s.problem(rel, fmt.Sprintf("cannot be read: %v", err))
			s.alone[rel], s.alone[rel+"/"] = true, true
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if rel == stateDir && d.IsDir() {
			return fs.SkipDir
		}
		if s.ign.Match(strings.Split(rel, "/"), d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			s.localDirs[rel] = true
			return nil
		}
		if skip[rel] {
			return nil
		}
		if !d.Type().IsRegular() {
			// A link (to a file or a folder) is not followed, and its path
			// is left alone on both sides: never written through, never
			// taken for a deleted file.
			s.rep.report(event{Action: "skip", Path: rel, Detail: "a link or other special file: left alone on both sides (list it in .hqignore to silence this)"})
			s.alone[rel], s.alone[rel+"/"] = true, true
			return nil
		}
		if err := hqpath.Check(s.prefix, rel); err != nil {
			s.problem(rel, fmt.Sprintf("cannot be kept in HQ: %v (rename it, or list it in .hqignore)", err))
			s.alone[rel] = true
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone since the listing of its folder
		}
		out[rel] = &localFile{size: info.Size(), mtime: info.ModTime().UnixNano()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.dir, err)
	}
	return out, nil
}

// hash reads the local files whose bytes the plan needs: those new or
// changed by size or time since the last sync.
func (s *syncer) hash(ctx context.Context, local map[string]*localFile) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.jobs, 4))
	var mu sync.Mutex
	var unreadable []string
	for p, l := range local {
		b := s.st.Files[p]
		if b != nil && b.Size == l.size && b.MTime == l.mtime {
			continue
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d, err := digestFile(filepath.Join(s.dir, filepath.FromSlash(p)))
			if err != nil {
				s.problem(p, fmt.Sprintf("cannot be read: %v", err))
				mu.Lock()
				unreadable = append(unreadable, p)
				mu.Unlock()
				return nil
			}
			l.d, l.hashed = d, true
			return nil
		})
	}
	err := g.Wait()
	for _, p := range unreadable {
		delete(local, p)
		s.alone[p] = true // neither sent nor taken for deleted
	}
	return err
}

// plan decides, path by path, what to do (the table in the README).
func (s *syncer) plan(local map[string]*localFile, remote map[string]*remoteFile) []task {
	paths := map[string]bool{}
	for p := range local {
		paths[p] = true
	}
	for p := range remote {
		paths[p] = true
	}
	for p := range s.st.Files {
		paths[p] = true
	}
	// Unrecorded conflict copies first, so that their files are planned as
	// the conflicts they are.
	for p, l := range local {
		if s.st.Files[p] == nil && remote[p] == nil && !s.leaveAlone(p) && s.adoptCopy(p, l, remote) {
			delete(paths, p)
		}
	}
	var tasks []task
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		l, r, b := local[p], remote[p], s.st.Files[p]
		if (b == nil && l == nil && r == nil) || s.leaveAlone(p) {
			continue
		}
		t := task{path: p, local: l, remote: r, base: b}
		if b == nil {
			switch {
			case l != nil && r != nil && l.d.sameBytes(r.ETag):
				t.op = opRecord
			case l != nil && r != nil:
				t.op = opConflict
			case l != nil:
				t.op, t.create = opUpload, true
			default:
				t.op = opDownload
			}
			tasks = append(tasks, t)
			continue
		}
		if b.Conflict != "" {
			if _, err := os.Lstat(filepath.Join(s.dir, filepath.FromSlash(b.Conflict))); err == nil {
				s.conflict(p, b.Conflict, "still in conflict: merge the copy into the file, then delete the copy")
				continue
			}
			if !s.dryRun {
				s.mu.Lock()
				b.Conflict = "" // the user settled it: their file is the answer
				s.dirty = true
				s.mu.Unlock()
			}
		}
		localGone, remoteGone := l == nil, r == nil
		localChanged := l != nil && (b.Size < 0 || l.size != b.Size || (l.mtime != b.MTime && l.d.MD5 != b.MD5))
		remoteChanged := r != nil && r.ETag != b.ETag
		switch {
		case localGone && remoteGone:
			t.op = opForget
		case localGone && remoteChanged:
			t.op = opDownload // deleted here, changed there: the newer version stays
		case localGone:
			t.op = opDeleteRemote
		case localChanged && remoteGone:
			t.op, t.create = opUpload, true // changed here, deleted there: the edit stays
		case localChanged && remoteChanged && l.d.sameBytes(r.ETag):
			t.op = opRecord
		case localChanged && remoteChanged:
			t.op = opConflict
		case localChanged:
			t.op = opUpload
		case remoteGone:
			t.op = opDeleteLocal
		case remoteChanged:
			t.op = opDownload
		case l.mtime != b.MTime:
			t.op = opTouch
		default:
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks
}

// leaveAlone says whether the plan must not touch p: an ignored path
// (one listed in .hqignore after it was synced stays as it is on both
// sides), one that could not be read here, or the state's own folder.
func (s *syncer) leaveAlone(p string) bool {
	if p == stateDir || strings.HasPrefix(p, stateDir+"/") || s.aloneHere(p) {
		return true
	}
	parts := strings.Split(p, "/")
	if s.ign.Match(parts, false) {
		return true
	}
	// Under an ignored folder (gitignore's rule: a file in an excluded
	// folder cannot be included again; the scan never sees it).
	for i := 1; i < len(parts); i++ {
		if s.ign.Match(parts[:i], true) {
			return true
		}
	}
	return false
}

// aloneHere says whether p, or a folder above it, is in s.alone.
func (s *syncer) aloneHere(p string) bool {
	if s.alone[p] {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && s.alone[p[:i+1]] {
			return true
		}
	}
	return false
}

// copyName matches the names of conflict copies: NAME.conflict-<short
// ETag>, with -N when that name was taken.
var copyName = regexp.MustCompile(`^(.+)\.conflict-([0-9A-Za-z]{1,8})(-[0-9]+)?$`)

// adoptCopy recognizes a conflict copy that a killed sync wrote before it
// could record it: a new local file named as a copy of a path whose remote
// version holds the same bytes. It becomes that path's conflict copy
// again, rather than a new file to upload. The plan runs before any
// transfer, so the state needs no lock here.
func (s *syncer) adoptCopy(p string, l *localFile, remote map[string]*remoteFile) bool {
	m := copyName.FindStringSubmatch(p)
	if m == nil {
		return false
	}
	r := remote[m[1]]
	if r == nil || shortETag(r.ETag) != m[2] || !l.d.sameBytes(r.ETag) {
		return false
	}
	if b := s.st.Files[m[1]]; b == nil || b.Conflict == "" {
		// Even in a dry run: the plan below then reads the path as the
		// conflict it is (a dry run never saves the state).
		s.st.Files[m[1]] = &entry{ETag: r.ETag, Size: -1, Conflict: p}
		s.dirty = true
	}
	return true
}

// exec carries out one task; what it finds goes to the state and the
// report, never to an error that stops the others.
func (s *syncer) exec(ctx context.Context, t task) {
	abs := filepath.Join(s.dir, filepath.FromSlash(t.path))
	switch t.op {
	case opRecord, opTouch:
		s.record(t.path, t.remote.ETag, t.local)
	case opForget:
		s.forget(t.path)
	case opUpload:
		s.upload(ctx, t, abs)
	case opDownload:
		s.download(ctx, t, abs)
	case opDeleteRemote:
		err := s.rem.remove(ctx, t.path, t.base.ETag)
		switch {
		case err == nil:
			s.forget(t.path)
			s.did(opDeleteRemote, t.path, "")
		case errors.Is(err, errPrecondition):
			// Changed there since: the newer version comes back here.
			s.keepBoth(ctx, t, abs, "changed remotely after it was deleted here; the newer version was brought back")
		default:
			s.fail(t.path, err)
		}
	case opDeleteLocal:
		st, err := os.Lstat(abs)
		if err != nil || st.Size() != t.local.size || st.ModTime().UnixNano() != t.local.mtime {
			s.changedDuring(t.path)
			return
		}
		if err := os.Remove(abs); err != nil {
			s.fail(t.path, err)
			return
		}
		s.mu.Lock()
		s.emptied = append(s.emptied, filepath.Dir(abs))
		s.mu.Unlock()
		s.forget(t.path)
		s.did(opDeleteLocal, t.path, "")
	case opConflict:
		s.keepBoth(ctx, t, abs, "")
	}
}

// upload sends a local file; losing its condition makes it a conflict.
func (s *syncer) upload(ctx context.Context, t task, abs string) {
	cond := putCond{create: t.create}
	if !t.create {
		cond.ifMatch = t.base.ETag
	}
	rf, err := s.rem.put(ctx, t.path, abs, cond, s.rep.bar.add)
	switch {
	case err == nil:
		if e := strings.Trim(rf.ETag, `"`); len(e) == 32 && e != t.local.d.MD5 {
			// The file changed between its reading and its upload: what
			// went up is not what the scan saw, so the next sync looks again.
			s.record(t.path, rf.ETag, &localFile{size: -1})
		} else {
			s.record(t.path, rf.ETag, t.local)
		}
		s.did(opUpload, t.path, rf.ETag)
	case errors.Is(err, errPrecondition):
		s.keepBoth(ctx, t, abs, "")
	case errors.Is(err, os.ErrNotExist):
		s.changedDuring(t.path)
	default:
		s.fail(t.path, err)
	}
}

// fetch downloads path's current remote version into a temp file in
// DIR/.hq/tmp (on disk for sure only after save's syncfs).
func (s *syncer) fetch(ctx context.Context, path string) (tmp string, rf remoteFile, d digest, err error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, stateDir, "tmp"), "get-*")
	if err != nil {
		return "", rf, d, err
	}
	g := newDigester()
	rf, err = s.rem.get(ctx, path, io.MultiWriter(f, g, s.rep.bar))
	d = g.sum()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", rf, d, err
	}
	return f.Name(), rf, d, nil
}

// download brings the remote version here: in place of an unchanged
// local file, or where there was none (never over one that appeared).
func (s *syncer) download(ctx context.Context, t task, abs string) {
	tmp, rf, d, err := s.fetch(ctx, t.path)
	if errors.Is(err, errNotFound) {
		s.changedDuring(t.path)
		return
	}
	if err != nil {
		s.fail(t.path, err)
		return
	}
	defer os.Remove(tmp)
	mode := os.FileMode(0o644)
	if t.local != nil {
		if st, err := os.Lstat(abs); err == nil {
			mode = st.Mode().Perm() // an updated script stays executable
		}
	}
	placed, err := s.stat(tmp, mode)
	if err == nil {
		if t.local == nil {
			err = s.placeNew(tmp, abs)
		} else if st, serr := os.Lstat(abs); serr != nil || !st.Mode().IsRegular() || st.Size() != t.local.size || st.ModTime().UnixNano() != t.local.mtime {
			err = os.ErrExist // edited here since the plan
		} else if err = s.safeParents(abs); err == nil {
			err = os.Rename(tmp, abs)
		}
	}
	if errors.Is(err, os.ErrExist) {
		s.conflictWith(t.path, abs, tmp, rf, d, "")
		return
	}
	if err != nil {
		s.fail(t.path, err)
		return
	}
	s.recordPlaced(t.path, placed, rf.ETag, d)
	s.did(opDownload, t.path, rf.ETag)
}

// keepBoth settles a path changed on both sides (or a lost condition):
// the remote version is fetched; if it holds the local bytes, nothing is
// left to do; otherwise it lands beside the local file as a conflict copy.
func (s *syncer) keepBoth(ctx context.Context, t task, abs, why string) {
	tmp, rf, d, err := s.fetch(ctx, t.path)
	if errors.Is(err, errNotFound) {
		if t.local != nil && !t.create {
			// Deleted there meanwhile: the local file goes up as new.
			t.op, t.create = opUpload, true
			s.upload(ctx, t, abs)
			return
		}
		if t.local == nil {
			s.forget(t.path) // gone from both
			return
		}
		s.changedDuring(t.path)
		return
	}
	if err != nil {
		s.fail(t.path, err)
		return
	}
	defer os.Remove(tmp)
	if t.local == nil {
		placed, err := s.stat(tmp, 0o644)
		if err == nil {
			err = s.placeNew(tmp, abs)
		}
		if err != nil {
			if !errors.Is(err, os.ErrExist) {
				s.fail(t.path, err)
				return
			}
			s.conflictWith(t.path, abs, tmp, rf, d, why)
			return
		}
		s.recordPlaced(t.path, placed, rf.ETag, d)
		s.conflict(t.path, "", why)
		return
	}
	s.conflictWith(t.path, abs, tmp, rf, d, why)
}

// conflictWith compares the fetched remote version (tmp) with the local
// file and, when they differ, keeps it as NAME.conflict-<etag>.
func (s *syncer) conflictWith(path, abs, tmp string, rf remoteFile, d digest, why string) {
	before, err := os.Lstat(abs)
	if err != nil || !before.Mode().IsRegular() {
		s.problem(path, "neither a file here nor absent (a folder or a link?): left alone")
		return
	}
	ld, err := digestFile(abs)
	if after, serr := os.Lstat(abs); err == nil && serr == nil && ld.MD5 == d.MD5 &&
		after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) {
		s.record(path, rf.ETag, &localFile{size: after.Size(), mtime: after.ModTime().UnixNano(), d: ld, hashed: true})
		return
	}
	if _, err := s.stat(tmp, 0o644); err != nil {
		s.fail(path, err)
		return
	}
	name := path + ".conflict-" + shortETag(rf.ETag)
	for i := 2; ; i++ {
		dst := filepath.Join(s.dir, filepath.FromSlash(name))
		err := s.placeNew(tmp, dst)
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrExist) {
			if od, derr := digestFile(dst); derr == nil && od.MD5 == d.MD5 {
				break // that copy is already here
			}
			if i < 100 {
				name = fmt.Sprintf("%s.conflict-%s-%d", path, shortETag(rf.ETag), i)
				continue
			}
		}
		s.problem(path, fmt.Sprintf("keeping the remote version beside it: %v", err))
		return
	}
	s.mu.Lock()
	s.st.Files[path] = &entry{ETag: rf.ETag, Size: -1, Conflict: name}
	s.dirty, s.placed = true, true
	s.mu.Unlock()
	s.conflict(path, name, why)
}

// stat sets a fetched file's mode and answers its size and time before
// it takes its place: what the state records is then what was written,
// not an edit made a moment after.
func (s *syncer) stat(tmp string, mode os.FileMode) (*localFile, error) {
	if err := os.Chmod(tmp, mode); err != nil {
		return nil, err
	}
	st, err := os.Lstat(tmp)
	if err != nil {
		return nil, err
	}
	return &localFile{size: st.Size(), mtime: st.ModTime().UnixNano()}, nil
}

// safeParents makes dst's folders and checks that none of them, from DIR
// down, is a link: hq writes only inside DIR, never through a link.
func (s *syncer) safeParents(dst string) error {
	parent := filepath.Dir(dst)
	rel, err := filepath.Rel(s.dir, parent)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is outside %s", dst, s.dir)
	}
	// Down from DIR, each folder is checked before the next is made in it
	// (MkdirAll would follow a link first and check nothing).
	d := s.dir
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		if name == "." {
			continue
		}
		d = filepath.Join(d, name)
		st, err := os.Lstat(d)
		if errors.Is(err, os.ErrNotExist) {
			if err = os.Mkdir(d, 0o755); err == nil || errors.Is(err, os.ErrExist) {
				st, err = os.Lstat(d) // made here, or by a parallel transfer
			}
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is a link or a file, not a folder: not followed", d)
		}
	}
	return nil
}

// placeNew moves tmp to dst only if dst does not exist (a hard link, so
// that a file made meanwhile is never replaced); os.ErrExist otherwise.
func (s *syncer) placeNew(tmp, dst string) error {
	if err := s.safeParents(dst); err != nil {
		return err
	}
	err := os.Link(tmp, dst)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV) {
		// A file system without hard links: check, then rename.
		if _, serr := os.Lstat(dst); serr == nil {
			return os.ErrExist
		}
		return os.Rename(tmp, dst)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	return nil
}

// removeEmptyParents removes folders left empty by a local delete, up to
// (not including) DIR.
func (s *syncer) removeEmptyParents(d string) {
	for d != s.dir && strings.HasPrefix(d, s.dir+string(filepath.Separator)) {
		if os.Remove(d) != nil {
			return
		}
		d = filepath.Dir(d)
	}
}

func (s *syncer) record(path, etag string, l *localFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	en := &entry{ETag: etag, Size: l.size, MTime: l.mtime, MD5: l.d.MD5}
	if !l.hashed {
		if old := s.st.Files[path]; old != nil {
			en.MD5 = old.MD5 // unchanged bytes, not read again
		}
	}
	s.st.Files[path] = en
	s.dirty = true
}

// recordPlaced records a file just written here from the remote version,
// as it was when it took its place.
func (s *syncer) recordPlaced(path string, placed *localFile, etag string, d digest) {
	placed.d, placed.hashed = d, true
	s.record(path, etag, placed)
	s.markDirty(true)
}

func (s *syncer) forget(path string) {
	s.mu.Lock()
	delete(s.st.Files, path)
	s.dirty = true
	s.mu.Unlock()
}

func (s *syncer) did(o op, path, etag string) {
	s.mu.Lock()
	s.done[opNames[o]]++
	s.mu.Unlock()
	s.rep.report(event{Action: opNames[o], Path: path, ETag: etag})
}

// conflict reports a path changed on both sides; copyName holds the
// remote version. A file deleted here whose newer remote version was
// brought back is reported so too (no copy): the deletion the user asked
// for was not carried out, so the sync does not end as if it had been.
func (s *syncer) conflict(path, copyName, why string) {
	ev := event{Action: "conflict", Path: path, To: copyName, Detail: why}
	s.mu.Lock()
	s.conflicts = append(s.conflicts, ev)
	s.mu.Unlock()
	s.rep.report(ev)
}

// fail reports a task's error; an ended session stops the whole sync
// (every other task would fail the same way) and is said once.
func (s *syncer) fail(path string, err error) {
	if errors.Is(err, errSessionEnded) && s.stop != nil {
		s.stop(err)
		return
	}
	if s.stopped() {
		return // interrupted: the tasks' own errors say nothing more
	}
	s.problem(path, err.Error())
}

func (s *syncer) stopped() bool { return s.runCtx != nil && s.runCtx.Err() != nil }

func (s *syncer) problem(path, msg string) {
	s.mu.Lock()
	s.problems++
	s.mu.Unlock()
	s.rep.report(event{Action: "error", Path: path, Detail: msg})
}

func (s *syncer) changedDuring(path string) {
	s.mu.Lock()
	s.again++
	s.mu.Unlock()
	s.rep.report(event{Action: "error", Path: path, Detail: "changed during the sync; run hq sync again"})
}

// saveEvery saves the state while transfers run, so a killed sync keeps
// what it finished (what it did not record is recognized next time by
// comparing bytes with ETags, so nothing is sent twice or duplicated).
func (s *syncer) saveEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = s.save()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (s *syncer) save() error {
	s.saveMu.Lock() // one save at a time, in order
	defer s.saveMu.Unlock()
	// The snapshot is taken under the lock; the slow part (syncfs, the
	// file's own fsync) runs without it, so transfers go on meanwhile.
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(s.st)
	placed := s.placed
	s.dirty, s.placed = false, false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// The state may call a downloaded file synced only once its bytes are
	// on disk: after a crash, an empty file that the state took for the
	// synced one would go up as an edit. Every file the snapshot names was
	// written before it was taken, so one syncfs now covers them all (an
	// fsync each made 10,000 downloads several times slower).
	if placed {
		err := syncfs(s.dir)
		if err != nil {
			s.markDirty(true)
			return fmt.Errorf("flushing %s to disk: %w", s.dir, err)
		}
	}
	if err := atomicfile.Write(statePath(s.dir), b); err != nil {
		s.markDirty(placed)
		return fmt.Errorf("saving the sync state: %w", err)
	}
	return nil
}

// syncfs flushes the file system that holds dir.
func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// markDirty asks the next save to write the state again.
func (s *syncer) markDirty(placed bool) {
	s.mu.Lock()
	s.dirty = true
	s.placed = s.placed || placed
	s.mu.Unlock()
}

// finish prints the summary and chooses the exit.
func (s *syncer) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.SortFunc(s.conflicts, func(a, b event) int { return strings.Compare(a.Path, b.Path) })
	paths, words := []string{}, []string{}
	for _, c := range s.conflicts {
		paths = append(paths, c.Path)
		if c.To != "" {
			words = append(words, c.Path+" (the remote version is in "+c.To+")")
		} else {
			words = append(words, c.Path+" (brought back: "+c.Detail+")")
		}
	}
	sum := map[string]any{"uploaded": s.done["upload"], "downloaded": s.done["download"], "deletedRemote": s.done["delete-remote"],
		"deletedLocal": s.done["delete-local"], "conflicts": paths, "errors": s.problems + s.again,
		"dryRun": s.dryRun, "inSync": !s.dryRun && len(s.conflicts) == 0 && s.problems+s.again == 0}
	if s.rep.asJSON {
		s.rep.mu.Lock()
		_ = json.NewEncoder(s.rep.out).Encode(map[string]any{"summary": sum})
		s.rep.mu.Unlock()
	} else if !s.dryRun {
		fmt.Fprintf(s.rep.out, "%d uploaded, %d downloaded, %d deleted remotely, %d deleted here, %d conflicts, %d errors\n",
			s.done["upload"], s.done["download"], s.done["delete-remote"], s.done["delete-local"], len(s.conflicts), s.problems+s.again)
	}
	switch {
	case s.problems+s.again > 0:
		return fmt.Errorf("%d paths could not be synced (listed above)", s.problems+s.again)
	case len(s.conflicts) > 0:
		return &conflictError{fmt.Sprintf("%d conflicts left: %s. Nothing was overwritten: merge what you want into each file, delete its copy, and sync again",
			len(s.conflicts), strings.Join(words, "; "))}
	}
	return nil
}
