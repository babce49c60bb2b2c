package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/quantapix/hqd/internal/hqpath"
)

func cmdLs(ctx context.Context, args []string, e env) error {
	fs := newFlags("ls", "[PREFIX] [-r] [--json]", e)
	recursive := fs.Bool("r", false, "list every file under PREFIX, not only its first level")
	asJSON := fs.Bool("json", false, "print one JSON object: {\"files\":[…],\"folders\":[…]}")
	pos, err := parseFlags(fs, args, 0, 1)
	if err != nil {
		return err
	}
	prefix := ""
	if len(pos) == 1 {
		prefix = pos[0]
	}
	a, err := newAPI(ctx, e, 2)
	if err != nil {
		return err
	}
	delimiter := "/"
	if *recursive {
		delimiter = ""
	}
	all := listing{Files: []remoteFile{}, Folders: []string{}}
	for token := ""; ; {
		l, err := a.listPage(ctx, prefix, delimiter, token)
		if err != nil {
			return err
		}
		all.Files = append(all.Files, l.Files...)
		all.Folders = append(all.Folders, l.Folders...)
		if token = l.NextToken; token == "" {
			break
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"files": all.Files, "folders": all.Folders})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, d := range all.Folders {
		fmt.Fprintf(tw, "\t\t%s\t\n", d)
	}
	for _, f := range all.Files {
		fmt.Fprintf(tw, "%d\t%s\t%s\t\n", f.Size, f.LastModified, f.Path)
	}
	return tw.Flush()
}

func cmdGet(ctx context.Context, args []string, e env) error {
	fs := newFlags("get", "PATH [-o FILE] [--json]", e)
	out := fs.String("o", "", "write to FILE (replaced whole, only once every byte arrived) instead of standard output")
	asJSON := fs.Bool("json", false, "with -o: print {\"path\",\"etag\",\"size\"} of what was read")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	path := pos[0]
	a, err := newAPI(ctx, e, 2)
	if err != nil {
		return err
	}
	if err := hqpath.Check(a.prefix, path); err != nil {
		return fmt.Errorf("%q: %v", path, err)
	}
	if *out == "" || *out == "-" {
		_, err := a.get(ctx, path, e.stdout)
		return describe(path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".hq-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	bar := newBar(e, -1, path)
	f, err := a.get(ctx, path, io.MultiWriter(tmp, bar))
	bar.finish()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return describe(path, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(f)
	}
	return nil
}

func cmdPut(ctx context.Context, args []string, e env) error {
	fs := newFlags("put", "FILE PATH [--if-match ETAG] [--json]", e)
	ifMatch := fs.String("if-match", "", "write only if the file is still this version (its ETag); otherwise exit 3 and change nothing")
	asJSON := fs.Bool("json", false, "print {\"path\",\"etag\",\"size\"} of what was written")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	name, path := pos[0], pos[1]
	st, err := os.Stat(name)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", name)
	}
	a, err := newAPI(ctx, e, 2)
	if err != nil {
		return err
	}
	if err := hqpath.Check(a.prefix, path); err != nil {
		return fmt.Errorf("%q: %v", path, err)
	}
	bar := newBar(e, st.Size(), path)
	f, err := a.put(ctx, path, name, putCond{ifMatch: quoteETag(*ifMatch)}, bar.add)
	bar.finish()
	if err != nil {
		return describe(path, err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(f)
	}
	fmt.Fprintf(e.stdout, "%s\t%s\t%d\n", f.Path, f.ETag, f.Size)
	return nil
}

func cmdRm(ctx context.Context, args []string, e env) error {
	fs := newFlags("rm", "PATH [--if-match ETAG]", e)
	ifMatch := fs.String("if-match", "", "delete only if the file is still this version (its ETag); otherwise exit 3 and change nothing")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	a, err := newAPI(ctx, e, 2)
	if err != nil {
		return err
	}
	if err := hqpath.Check(a.prefix, pos[0]); err != nil {
		return fmt.Errorf("%q: %v", pos[0], err)
	}
	return describe(pos[0], a.remove(ctx, pos[0], quoteETag(*ifMatch)))
}

// describe words a file operation's error for the person who asked: a
// lost condition is a conflict (exit 3).
func describe(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errPrecondition):
		return &conflictError{fmt.Sprintf("%s: it is not the version named by --if-match (changed or gone); nothing was changed", path)}
	case errors.Is(err, errNotFound):
		return fmt.Errorf("%s: no such file", path)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// quoteETag accepts an ETag with or without its quotes, as people copy
// them from ls output or a shell.
func quoteETag(s string) string {
	if s == "" || s == "*" || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `W/"`) {
		return s
	}
	return `"` + s + `"`
}
