// Package ssmenv writes hqd's settings file (HQD_* variables, read by
// systemd's EnvironmentFile=) from the parameters under one SSM path, so
// that on the EC2 host `aws ssm put-parameter` and `systemctl restart hqd`
// are all it takes to change a setting (hqd-ssm.conf runs `hqd
// ssm-settings` before every start).
package ssmenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// API is the part of the SSM client used here.
type API interface {
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, opts ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
}

var validName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// Fetch reads the parameters directly under dir (SecureStrings decrypted)
// and returns them by their last name segment. A parameter whose name is
// not a variable name, or whose value has a line break or another control
// character, is refused: the whole read fails rather than start hqd with
// a setting silently missing.
func Fetch(ctx context.Context, api API, dir string) (map[string]string, error) {
	dir = "/" + strings.Trim(dir, "/")
	out := map[string]string{}
	in := &ssm.GetParametersByPathInput{Path: aws.String(dir), WithDecryption: aws.Bool(true), Recursive: aws.Bool(false)}
	for p := ssm.NewGetParametersByPathPaginator(api, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading SSM parameters under %s: %w", dir, err)
		}
		for _, prm := range page.Parameters {
			name := path.Base(aws.ToString(prm.Name))
			if !validName.MatchString(name) {
				return nil, fmt.Errorf("SSM parameter %s: %q is not a variable name (A-Z, 0-9, _)", aws.ToString(prm.Name), name)
			}
			v := aws.ToString(prm.Value)
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return nil, fmt.Errorf("SSM parameter %s: the value has a line break or a control character", aws.ToString(prm.Name))
			}
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no SSM parameters under %s", dir)
	}
	return out, nil
}

// Render is the env file for values: one KEY="value" line each, sorted,
// quoted as systemd's EnvironmentFile= reads double quotes.
func Render(values map[string]string, source string, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `hqd ssm-settings` from the SSM parameters under %s at %s.\n", source, now.UTC().Format(time.RFC3339))
	b.WriteString("# Edits here are replaced at hqd's next start: change the parameters instead.\n")
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	for _, k := range names {
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, esc.Replace(values[k]))
	}
	return []byte(b.String())
}

// Write replaces the file at name with data, all or nothing. The file
// keeps its owner, group and mode if it exists; a new one is 0640,
// group hqd when that group exists (hqd reads it; nothing else may).
func Write(name string, data []byte) error {
	mode, uid, gid := os.FileMode(0o640), -1, -1
	if st, err := os.Stat(name); err == nil {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if g, err := user.LookupGroup("hqd"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	// atomicfile makes the file 0600 and renames it into place; the mode
	// and owner are set on the temp file's successor right after. Nothing
	// but root can read it in between.
	if err := atomicfile.Write(name, data); err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		// A caller that is not root (a test, a file of its own) keeps its ownership.
		if err := os.Chown(name, uid, gid); err != nil && !errors.Is(err, syscall.EPERM) {
			return err
		}
	}
	return os.Chmod(name, mode)
}
