package jobs

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/lake"
)

// targetRE is a Lean module name: Proving.Basic.
var targetRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_']*(\.[A-Za-z_][A-Za-z0-9_']*)*$`)

type verifyRequest struct {
	Target *string `json:"target"`
	Source *string `json:"source"`
}

// verify is POST /api/verify.
func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	var in verifyRequest
	if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &in); err != nil {
		return err
	}
	if (in.Target == nil) == (in.Source == nil) {
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "send exactly one of target and source")
	}
	req := Request{Kind: "verify", Owner: id.Sub, Spec: lake.Spec{Dir: h.VerifierDir},
		Verified: func(ok bool, errs int, sorry bool) bool { return ok && errs == 0 && !sorry }}
	if in.Target != nil {
		t := *in.Target
		if !targetRE.MatchString(t) || len(t) > 512 {
			return httpx.Errorf(http.StatusUnprocessableEntity, "unknown_target", "%q is not a module name like Proving.Basic", t)
		}
		if st, err := os.Stat(filepath.Join(h.VerifierDir, filepath.FromSlash(strings.ReplaceAll(t, ".", "/"))+".lean")); err != nil || !st.Mode().IsRegular() {
			return httpx.Errorf(http.StatusUnprocessableEntity, "unknown_target", "the verifier project has no module %s", t)
		}
		req.Spec.Args, req.Mode, req.Target = []string{"build", t}, lake.ModeBuild, t
		if err := h.ready(); err != nil {
			return err
		}
		req.Key = h.key(h.VerifierDir, "verify-target", req.Spec.Args, []byte(t))
	} else {
		src := *in.Source
		if int64(len(src)) > h.MaxSource {
			return httpx.Errorf(http.StatusRequestEntityTooLarge, "source_too_large", "the source is %d bytes; at most %d are checked", len(src), h.MaxSource)
		}
		if strings.IndexByte(src, 0) >= 0 {
			return httpx.Errorf(http.StatusBadRequest, "invalid_request", "the source contains a NUL byte")
		}
		if err := h.ready(); err != nil {
			return err
		}
		req.Spec.Args, req.Mode, req.Spec.Source = []string{"env", "lean", "{source}"}, lake.ModeLean, []byte(src)
		req.Key = h.key(h.VerifierDir, "verify-source", req.Spec.Args, []byte(src))
	}
	return h.submit(w, r, req)
}

// key is the cache key of an input against a project's current state.
func (h *Handlers) key(dir, kind string, args []string, input []byte) string {
	tree, err := lake.TreeState(dir)
	if err != nil {
		tree = "unreadable:" + time.Now().String() // never a hit
	}
	return lake.Key(kind, tree, lake.Toolchain(dir), h.LakeBin, args, input)
}
