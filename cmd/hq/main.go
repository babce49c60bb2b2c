// Command hq is hqd's command-line client: it signs in with the same
// Cognito app client as the PWA, reads and writes the user's HQ files, and
// keeps a local folder in step with them (SPEC §11).
//
// Exit codes: 0 done (and, for sync, in step), 1 an error, 3 conflicts
// left (a sync, or a conditional put or rm that lost to another writer).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quantapix/hqd/internal/version"
)

const (
	exitOK       = 0
	exitError    = 1
	exitConflict = 3
)

const usage = `hq — keep your HQ files in step with hqd

  hq login --endpoint URL --email E [--password-stdin]
  hq logout
  hq ls [PREFIX] [-r] [--json]
  hq get PATH [-o FILE] [--json]
  hq put FILE PATH [--if-match ETAG] [--json]
  hq rm PATH [--if-match ETAG]
  hq sync DIR [--dry-run] [--direct] [--jobs N] [--json]
  hq version

The session lives in $HQ_CONFIG_DIR (default: your user config folder's
hq/), readable by you only. Exit codes: 0 done or in sync, 1 error,
3 conflicts left. "hq COMMAND -h" shows a command's options.
`

// env is what a command sees of the world; tests run commands in-process
// with their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// run runs one hq command and returns its exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitError
	}
	cmds := map[string]func(context.Context, []string, env) error{
		"login":  cmdLogin,
		"logout": cmdLogout,
		"ls":     cmdLs,
		"get":    cmdGet,
		"put":    cmdPut,
		"rm":     cmdRm,
		"sync":   cmdSync,
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(e.stdout, "hq", version.Version)
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(e.stderr, "hq: unknown command %q\n\n%s", name, usage)
		return exitError
	}
	err := cmd(ctx, args[1:], e)
	var conflict *conflictError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &conflict):
		fmt.Fprintln(e.stderr, "hq:", err)
		return exitConflict
	default:
		fmt.Fprintln(e.stderr, "hq:", err)
		return exitError
	}
}

// conflictError ends a command with exit code 3: another writer got there
// first, and nothing of theirs or the user's was overwritten.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// parseFlags parses args with fs, allowing flags after the positional
// arguments too ("hq sync DIR --dry-run"), and returns the positional ones.
// The command takes min to max positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || len(pos) > max {
		fs.Usage()
		return nil, fmt.Errorf("%s takes %s", fs.Name(), argCount(min, max))
	}
	return pos, nil
}

func argCount(min, max int) string {
	switch {
	case min == max && min == 1:
		return "one argument"
	case min == max:
		return fmt.Sprintf("%d arguments", min)
	case min == 0 && max == 1:
		return "at most one argument"
	default:
		return fmt.Sprintf("%d to %d arguments", min, max)
	}
}

// newFlags is a command's flag set, printing its usage to stderr.
func newFlags(name, synopsis string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: hq %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
