package deploy

// Reading the Terraform offline, beyond its syntax: a module's locals and
// policy documents evaluated with sample values for its variables and data
// sources (what `terraform plan` would compute, for the expressions that
// need nothing but those), and a small IAM evaluator for the policies.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfModule is one module or env directory, every .tf file of it.
type tfModule struct {
	dir    string
	src    map[string][]byte // file → source
	blocks []*hclsyntax.Block
}

func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	m := &tfModule{dir: dir, src: map[string][]byte{}}
	files, _ := filepath.Glob(filepath.Join("terraform", dir, "*.tf"))
	if len(files) == 0 {
		t.Fatalf("no .tf files in terraform/%s", dir)
	}
	p := hclparse.NewParser()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		hf, diags := p.ParseHCL(src, f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		m.src[f] = src
		m.blocks = append(m.blocks, hf.Body.(*hclsyntax.Body).Blocks...)
	}
	return m
}

// block is the block of that type and labels (nil when there is none).
func (m *tfModule) block(typ string, labels ...string) *hclsyntax.Block {
	for _, b := range m.blocks {
		if b.Type == typ && strings.Join(b.Labels, ".") == strings.Join(labels, ".") {
			return b
		}
	}
	return nil
}

func (m *tfModule) mustBlock(t *testing.T, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	b := m.block(typ, labels...)
	if b == nil {
		t.Fatalf("terraform/%s: no %s %q", m.dir, typ, strings.Join(labels, "."))
	}
	return b
}

// text is the source of an expression or block.
func (m *tfModule) text(r hcl.Range) string {
	return string(m.src[r.Filename][r.Start.Byte:r.End.Byte])
}

// attrText is the source of a block's attribute ("" when it is absent).
func (m *tfModule) attrText(b *hclsyntax.Block, name string) string {
	a, ok := b.Body.Attributes[name]
	if !ok {
		return ""
	}
	return m.text(a.Expr.Range())
}

// sensitiveVars are the module's variables declared sensitive = true.
func (m *tfModule) sensitiveVars() map[string]bool {
	out := map[string]bool{}
	for _, b := range m.blocks {
		if b.Type != "variable" {
			continue
		}
		if a, ok := b.Body.Attributes["sensitive"]; ok {
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.True() {
				out[b.Labels[0]] = true
			}
		}
	}
	return out
}

// defaults are the variables' default values, where they are constants.
func (m *tfModule) defaults() map[string]cty.Value {
	out := map[string]cty.Value{}
	for _, b := range m.blocks {
		if b.Type != "variable" {
			continue
		}
		if a, ok := b.Body.Attributes["default"]; ok {
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
				out[b.Labels[0]] = v
			}
		}
	}
	return out
}

var tfFunctions = map[string]function.Function{
	"concat":     stdlib.ConcatFunc,
	"join":       stdlib.JoinFunc,
	"keys":       stdlib.KeysFunc,
	"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tostring":   stdlib.MakeToFunc(cty.String),
	"regex":      stdlib.RegexFunc,
	"replace":    stdlib.ReplaceFunc,
	"trim":       stdlib.TrimFunc,
	"length":     stdlib.LengthFunc,
	"flatten":    stdlib.FlattenFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
}

// ctx is an evaluation context: the module's variables (defaults, then
// vars), the given roots (data, resources, module outputs: nested maps),
// and every local that can be computed from them.
func (m *tfModule) ctx(t *testing.T, vars map[string]any, roots map[string]any) *hcl.EvalContext {
	t.Helper()
	vs := m.defaults()
	for k, v := range vars {
		vs[k] = ctyOf(v)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vs)}, Functions: tfFunctions}
	for k, v := range roots {
		ctx.Variables[k] = ctyOf(v)
	}
	locals := map[string]cty.Value{}
	var pending []*hclsyntax.Attribute
	for _, b := range m.blocks {
		if b.Type == "locals" {
			for _, a := range b.Body.Attributes {
				pending = append(pending, a)
			}
		}
	}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		ctx.Variables["local"] = cty.ObjectVal(locals)
		var next []*hclsyntax.Attribute
		for _, a := range pending {
			if v, diags := a.Expr.Value(ctx); diags.HasErrors() {
				next = append(next, a)
			} else {
				locals[a.Name] = v
				progress = true
			}
		}
		pending = next
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

// localVal is local.name as computed by ctx.
func localVal(t *testing.T, ctx *hcl.EvalContext, dir, name string) cty.Value {
	t.Helper()
	l := ctx.Variables["local"]
	if !l.Type().IsObjectType() || !l.Type().HasAttribute(name) {
		t.Fatalf("terraform/%s: local.%s is missing or cannot be computed from the sample values", dir, name)
	}
	return l.GetAttr(name)
}

// eval is an expression's value; the test fails when it cannot be computed.
func (m *tfModule) eval(t *testing.T, ctx *hcl.EvalContext, e hcl.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("terraform/%s: %s: %s", m.dir, m.text(e.Range()), diags.Error())
	}
	return v
}

func (m *tfModule) evalAttr(t *testing.T, ctx *hcl.EvalContext, b *hclsyntax.Block, name string) cty.Value {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("terraform/%s: %s %s has no %s", m.dir, b.Type, strings.Join(b.Labels, "."), name)
	}
	return m.eval(t, ctx, a.Expr)
}

// ctyOf turns nested Go maps, slices and scalars into a cty value.
func ctyOf(v any) cty.Value {
	switch v := v.(type) {
	case cty.Value:
		return v
	case string:
		return cty.StringVal(v)
	case bool:
		return cty.BoolVal(v)
	case int:
		return cty.NumberIntVal(int64(v))
	case []string:
		if len(v) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		var l []cty.Value
		for _, s := range v {
			l = append(l, cty.StringVal(s))
		}
		return cty.ListVal(l)
	case map[string]any:
		o := map[string]cty.Value{}
		for k, e := range v {
			o[k] = ctyOf(e)
		}
		return cty.ObjectVal(o)
	case nil:
		return cty.NullVal(cty.DynamicPseudoType)
	}
	panic(fmt.Sprintf("ctyOf: %T", v))
}

// strs is a string, list, tuple or set of strings as a Go slice.
func strs(v cty.Value) []string {
	if v.IsNull() {
		return nil
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, strs(e)...)
	}
	return out
}

// An IAM policy, as far as these tests need one.
type stmt struct {
	Sid                     string
	Effect                  string
	Actions, NotActions     []string
	Resources, NotResources []string
	Principals              map[string][]string // resource policies; nil in identity policies
	Conditions              []cond
}

type cond struct {
	Test, Key string
	Values    []string
}

// policyDoc evaluates data "aws_iam_policy_document" name.
func (m *tfModule) policyDoc(t *testing.T, ctx *hcl.EvalContext, name string) []stmt {
	t.Helper()
	b := m.mustBlock(t, "data", "aws_iam_policy_document", name)
	var out []stmt
	for _, sb := range b.Body.Blocks {
		if sb.Type != "statement" {
			continue
		}
		s := stmt{Effect: "Allow"}
		get := func(name string) []string {
			if a, ok := sb.Body.Attributes[name]; ok {
				return strs(m.eval(t, ctx, a.Expr))
			}
			return nil
		}
		if e := get("effect"); e != nil {
			s.Effect = e[0]
		}
		if sid := get("sid"); sid != nil {
			s.Sid = sid[0]
		}
		s.Actions, s.NotActions, s.Resources, s.NotResources = get("actions"), get("not_actions"), get("resources"), get("not_resources")
		for _, nb := range sb.Body.Blocks {
			one := func(name string) []string { return strs(m.evalAttr(t, ctx, nb, name)) }
			switch nb.Type {
			case "principals":
				if s.Principals == nil {
					s.Principals = map[string][]string{}
				}
				typ := one("type")[0]
				s.Principals[typ] = append(s.Principals[typ], one("identifiers")...)
			case "condition":
				s.Conditions = append(s.Conditions, cond{Test: one("test")[0], Key: one("variable")[0], Values: one("values")})
			default:
				t.Fatalf("terraform/%s: policy %s: a %s block is not understood here", m.dir, name, nb.Type)
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatalf("terraform/%s: policy %s has no statement", m.dir, name)
	}
	return out
}

// parsePolicyJSON reads a policy as AWS takes it (auth.SessionPolicy's).
func parsePolicyJSON(t *testing.T, doc string) []stmt {
	t.Helper()
	var p struct {
		Statement []struct {
			Sid, Effect       string
			Action, NotAction stringOrList
			Resource          stringOrList
			Principal         map[string]stringOrList
			Condition         map[string]map[string]stringOrList
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	var out []stmt
	for _, s := range p.Statement {
		st := stmt{Sid: s.Sid, Effect: s.Effect, Actions: s.Action, NotActions: s.NotAction, Resources: s.Resource}
		for typ, ids := range s.Principal {
			if st.Principals == nil {
				st.Principals = map[string][]string{}
			}
			st.Principals[typ] = ids
		}
		for test, keys := range s.Condition {
			for k, vs := range keys {
				st.Conditions = append(st.Conditions, cond{Test: test, Key: k, Values: vs})
			}
		}
		out = append(out, st)
	}
	return out
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// request is one API call as IAM sees it.
type request struct {
	Principal [2]string // type and identifier, for resource policies
	Action    string
	Resource  string
	Context   map[string]string // condition keys present in the request
}

func (r request) String() string {
	keys := make([]string, 0, len(r.Context))
	for k, v := range r.Context {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	p := ""
	if r.Principal[0] != "" {
		p = r.Principal[0] + ":" + r.Principal[1] + " "
	}
	return fmt.Sprintf("%s%s on %s %v", p, r.Action, r.Resource, keys)
}

// glob matches IAM's wildcards: * any run of characters, ? one.
func glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// matches tells whether a statement applies to a request. A condition
// operator the evaluator does not know fails the test: a new one must be
// taught here, not silently ignored.
func (s stmt) matches(t *testing.T, r request) bool {
	t.Helper()
	switch {
	case s.Actions != nil && !anyGlob(s.Actions, r.Action, true):
		return false
	case s.NotActions != nil && anyGlob(s.NotActions, r.Action, true):
		return false
	case s.Resources != nil && !anyGlob(s.Resources, r.Resource, false):
		return false
	case s.NotResources != nil && anyGlob(s.NotResources, r.Resource, false):
		return false
	}
	if s.Principals != nil {
		ids := s.Principals[r.Principal[0]]
		if !anyGlob(ids, r.Principal[1], false) && !anyGlob(s.Principals["*"], "*", false) {
			return false
		}
	}
	for _, c := range s.Conditions {
		var v string
		var ok bool
		for k, cv := range r.Context {
			if strings.EqualFold(k, c.Key) {
				v, ok = cv, true
			}
		}
		test, ifExists := strings.CutSuffix(c.Test, "IfExists")
		if !ok {
			if ifExists {
				continue
			}
			return false
		}
		var hit bool
		switch test {
		case "StringEquals":
			hit = slices.Contains(c.Values, v)
		case "StringEqualsIgnoreCase", "Bool":
			hit = slices.ContainsFunc(c.Values, func(w string) bool { return strings.EqualFold(w, v) })
		case "StringLike", "ArnLike", "ArnEquals": // ARN operators take wildcards too
			hit = anyGlob(c.Values, v, false)
		default:
			t.Fatalf("statement %q: condition operator %s is not understood by this evaluator", s.Sid, c.Test)
		}
		if !hit {
			return false
		}
	}
	return true
}

// allowed is IAM's answer for a request under every policy given (an
// identity policy, a session policy, a boundary: all must allow; or one
// resource policy): a matching Allow in each and no matching Deny in any.
func allowed(t *testing.T, r request, policies ...[]stmt) bool {
	t.Helper()
	for _, p := range policies {
		for _, s := range p {
			if strings.EqualFold(s.Effect, "Deny") && s.matches(t, r) {
				return false
			}
		}
	}
	for _, p := range policies {
		var ok bool
		for _, s := range p {
			if strings.EqualFold(s.Effect, "Allow") && s.matches(t, r) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// explicitlyDenied: a Deny statement of the policy matches the request.
func explicitlyDenied(t *testing.T, r request, policy []stmt) bool {
	t.Helper()
	for _, s := range policy {
		if strings.EqualFold(s.Effect, "Deny") && s.matches(t, r) {
			return true
		}
	}
	return false
}
