package evaluate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var today = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)

// leg writes one leg's JSON: "long call 100 x1 @2.5".
func leg(spec string) string {
	var side, right string
	var strike, prem float64
	var qty int
	expiry := "2026-12-18"
	f := strings.Fields(spec)
	side, right = f[0], f[1]
	fmt.Sscanf(f[2], "%g", &strike)
	fmt.Sscanf(strings.TrimPrefix(f[3], "x"), "%d", &qty)
	if len(f) > 4 {
		fmt.Sscanf(strings.TrimPrefix(f[4], "@"), "%g", &prem)
	}
	if len(f) > 5 {
		expiry = f[5]
	}
	return fmt.Sprintf(`{"side":%q,"right":%q,"strike":%g,"expiry":%q,"quantity":%d,"premium":%g}`, side, right, strike, expiry, qty, prem)
}

func body(legs ...string) string {
	var parts []string
	for _, l := range legs {
		parts = append(parts, leg(l))
	}
	return `{"portfolio":{"underlying":"SPY","legs":[` + strings.Join(parts, ",") + `]}}`
}

func run(b string) (*Normalized, *Analysis, error) {
	p, err := ParseRequest([]byte(b))
	if err != nil {
		return nil, nil, err
	}
	return Evaluate(p, today)
}

func fp(f float64) *float64 { return &f }

func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       string
		strategy   string
		maxLoss    float64
		maxGain    *float64
		breakevens []float64
	}{
		{"long call", body("long call 100 x1 @3"), LongCall, 3, nil, []float64{103}},
		{"long call x5", body("long call 100 x5 @3"), LongCall, 3, nil, []float64{103}},
		{"long put", body("long put 100 x1 @4"), LongPut, 4, fp(96), []float64{96}},
		{"debit call vertical", body("long call 100 x1 @5", "short call 110 x1 @2"), VerticalSpread, 3, fp(7), []float64{103}},
		{"credit call vertical", body("short call 100 x1 @5", "long call 110 x1 @2"), VerticalSpread, 7, fp(3), []float64{103}},
		{"debit put vertical", body("long put 110 x1 @6", "short put 100 x1 @2"), VerticalSpread, 4, fp(6), []float64{106}},
		{"credit put vertical 3:3, legs reversed", body("long put 90 x3 @1", "short put 100 x3 @4"), VerticalSpread, 7, fp(3), []float64{97}},
		{"call butterfly", body("long call 90 x1 @12", "short call 100 x2 @5", "long call 110 x1 @1"), Butterfly, 3, fp(7), []float64{93, 107}},
		{"put butterfly in any order", body("long put 110 x1 @11", "long put 90 x1 @1", "short put 100 x2 @4.5"), Butterfly, 3, fp(7), []float64{93, 107}},
		{"butterfly with the body as two legs of 1", body("long call 90 x1 @12", "short call 100 x1 @5", "long call 110 x1 @1", "short call 100 x1 @5"), Butterfly, 3, fp(7), []float64{93, 107}},
		{"butterfly 3:6:3", body("long call 90 x3 @12", "short call 100 x6 @5", "long call 110 x3 @1"), Butterfly, 3, fp(7), []float64{93, 107}},
		{"iron condor (SPEC §7's example)", body("long put 90 x1 @1", "short put 95 x1 @2", "short call 105 x1 @2", "long call 110 x1 @1"), IronCondor, 3, fp(2), []float64{93, 107}},
		{"iron condor shuffled 2:2", body("short call 105 x2 @2", "long call 110 x2 @1", "short put 95 x2 @2", "long put 90 x2 @1"), IronCondor, 3, fp(2), []float64{93, 107}},
		{"iron butterfly", body("long put 90 x1 @1", "short put 100 x1 @5", "short call 100 x1 @5", "long call 110 x1 @1"), IronButterfly, 2, fp(8), []float64{92, 108}},
		{"merged premiums are weighted", body("long call 100 x1 @2", "long call 100 x3 @4"), LongCall, 3.5, nil, []float64{103.5}},
		{"no premium given", body("long call 100 x1", "short call 110 x1"), VerticalSpread, 0, fp(10), []float64{100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, a, err := run(tc.body)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if a.Strategy != tc.strategy || n.Strategy != tc.strategy || math.Abs(a.MaxLoss-tc.maxLoss) > 1e-9 || !slices.Equal(a.Breakevens, tc.breakevens) ||
				(a.MaxGain == nil) != (tc.maxGain == nil) || (a.MaxGain != nil && math.Abs(*a.MaxGain-*tc.maxGain) > 1e-9) {
				t.Errorf("got %s loss %v gain %v breakevens %v; want %s %v %v %v", a.Strategy, a.MaxLoss, deref(a.MaxGain), a.Breakevens,
					tc.strategy, tc.maxLoss, deref(tc.maxGain), tc.breakevens)
			}
			checkBounded(t, n, a)
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return "unbounded"
	}
	return *p
}

// checkBounded is the invariant of SPEC §7: an accepted portfolio's payoff
// is bounded below, and the reported maximum loss is the minimum of the
// payoff at every strike and far beyond both ends.
func checkBounded(t *testing.T, n *Normalized, a *Analysis) {
	t.Helper()
	unit := unitOf(n)
	lo := math.Inf(1)
	points := []float64{0, 1e-9, 1e5, 1e6}
	for _, l := range n.Legs {
		points = append(points, l.Strike, l.Strike*0.5, l.Strike*2)
	}
	for _, s := range points {
		lo = math.Min(lo, Payoff(n.Legs, unit, s))
	}
	// Far beyond the strikes the payoff must not fall: compare two far
	// points (with the rounding of numbers that large in mind).
	if math.IsInf(lo, -1) || Payoff(n.Legs, unit, 1e7) < Payoff(n.Legs, unit, 1e6)-1e-6 {
		t.Fatalf("%s: the payoff is not bounded below: %+v (%v vs %v)", n.Strategy, n.Legs, Payoff(n.Legs, unit, 1e7), Payoff(n.Legs, unit, 1e6))
	}
	if math.Abs(-lo-a.MaxLoss) > 1e-6*math.Max(1, math.Abs(lo)) {
		t.Errorf("%s: maxLoss %v, but the payoff's minimum is %v", n.Strategy, a.MaxLoss, lo)
	}
}

func unitOf(n *Normalized) int {
	u := n.Legs[0].Quantity
	for _, l := range n.Legs {
		u = min(u, l.Quantity)
	}
	return u
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		malformed  bool // 400 rather than 422
		says       string
	}{
		{"naked short call", body("short call 100 x1 @3"), false, "short call at 100 without a covering long call"},
		{"naked short put", body("short put 100 x1 @3"), false, "short put at 100 without a covering long put"},
		{"naked short beside a long of the other right", body("long put 90 x1", "short call 110 x1"), false, "short call at 110 without a covering long call"},
		{"ratio spread 1:2", body("long call 100 x1 @5", "short call 110 x2 @2"), false, "ratio spread 1:2"},
		{"two shorts", body("short call 100 x1", "short call 110 x1"), false, "two short calls"},
		{"straddle", body("long call 100 x1", "long put 100 x1"), false, "straddle"},
		{"broken-wing butterfly", body("long call 90 x1", "short call 100 x2", "long call 115 x1"), false, "broken-wing butterfly"},
		{"butterfly 1:1:1", body("long call 90 x1", "short call 100 x1", "long call 110 x1"), false, "1:2:1"},
		{"inverted butterfly", body("short call 90 x1", "long call 100 x2", "short call 110 x1"), false, "long the lowest and highest"},
		{"condor with crossed strikes", body("long put 90 x1", "short put 106 x1", "short call 104 x1", "long call 110 x1"), false, "crossed strikes"},
		{"condor of unequal quantities", body("long put 90 x1", "short put 95 x2", "short call 105 x2", "long call 110 x1"), false, "equal quantities"},
		{"mixed expiries", body("long call 100 x1 @1 2026-12-18", "short call 110 x1 @1 2027-01-15"), false, "mixed expiries 2026-12-18 and 2027-01-15"},
		{"five legs", body("long put 80 x1", "long put 90 x1", "short put 95 x1", "short call 105 x1", "long call 110 x1"), false, "5 legs"},
		{"quantity 101", body("long call 100 x101"), false, "quantity 101 is over 100"},
		{"quantity over 100 after merging", body("long call 100 x60", "long call 100 x50"), false, "quantity 110 after merging"},
		{"quantity 0", body("long call 100 x0"), false, "quantity must be at least 1"},
		{"strike 0", body("long call 0 x1"), false, "strike must be more than 0"},
		{"negative strike", body("long call -5 x1"), false, "strike must be more than 0"},
		{"negative premium", body("long call 100 x1 @-1"), false, "premium must be 0 or more"},
		{"past expiry", body("long call 100 x1 @1 2026-11-21"), false, "expiry 2026-11-21 is in the past"},
		{"duplicate contradicting legs", body("long call 100 x1 @2", "short call 100 x1 @2"), false, "contradict each other"},
		{"unknown field", `{"portfolio":{"underlying":"SPY","legs":[{"side":"long","right":"call","strike":100,"expiry":"2026-12-18","quantity":1,"delta":0.5}]}}`, true, "unknown field"},
		{"unknown top-level field", `{"portfolio":{"underlying":"SPY","legs":[]},"x":1}`, true, "unknown field"},
		{"unknown side", strings.Replace(body("long call 100 x1"), `"long"`, `"sideways"`, 1), true, "side must be long or short"},
		{"unknown right", strings.Replace(body("long call 100 x1"), `"call"`, `"swap"`, 1), true, "right must be call or put"},
		{"quantity not an integer", strings.Replace(body("long call 100 x1"), `"quantity":1`, `"quantity":1.5`, 1), true, "quantity"},
		{"strike as a string", strings.Replace(body("long call 100 x1"), `"strike":100`, `"strike":"100"`, 1), true, "strike"},
		{"bad date", strings.Replace(body("long call 100 x1"), `2026-12-18`, `18/12/2026`, 1), true, "expiry must be a date"},
		{"impossible date", strings.Replace(body("long call 100 x1"), `2026-12-18`, `2026-02-30`, 1), true, "not a date"},
		{"no legs", `{"portfolio":{"underlying":"SPY","legs":[]}}`, true, "at least one leg"},
		{"no underlying", `{"portfolio":{"legs":[` + leg("long call 100 x1") + `]}}`, true, "underlying"},
		{"no portfolio", `{}`, true, "portfolio"},
		{"not JSON", `portfolio`, true, "malformed"},
		{"trailing data", body("long call 100 x1") + `{}`, true, "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(tc.body)
			var me *MalformedError
			var re *RefusedError
			switch {
			case err == nil:
				t.Fatal("accepted")
			case tc.malformed && !errors.As(err, &me):
				t.Errorf("%v: want a malformed-body error (400)", err)
			case !tc.malformed && !errors.As(err, &re):
				t.Errorf("%v: want a refusal (422)", err)
			case !strings.Contains(err.Error(), tc.says):
				t.Errorf("message %q does not say %q", err, tc.says)
			}
		})
	}
}

// TestPropertyBoundedBelow: random portfolios, whatever they are, are
// either refused or bounded below with maxLoss the payoff's minimum.
func TestPropertyBoundedBelow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 20000 {
		n := 1 + r.IntN(5)
		var legs []string
		for range n {
			side := []string{"long", "short"}[r.IntN(2)]
			right := []string{"call", "put"}[r.IntN(2)]
			legs = append(legs, fmt.Sprintf("%s %s %d x%d @%g", side, right, 80+5*r.IntN(9), 1+r.IntN(3), float64(r.IntN(80))/8))
		}
		nm, a, err := run(body(legs...))
		if err != nil {
			continue
		}
		accepted++
		checkBounded(t, nm, a)
	}
	if accepted < 100 {
		t.Errorf("only %d random portfolios accepted: the property is barely exercised", accepted)
	}
}

func FuzzEvaluate(f *testing.F) {
	for _, b := range []string{
		body("long call 100 x1 @3"),
		body("long put 90 x1 @1", "short put 95 x1 @2", "short call 105 x1 @2", "long call 110 x1 @1"),
		body("long call 90 x1 @12", "short call 100 x2 @5", "long call 110 x1 @1"),
		body("short call 100 x1 @3"),
		`{"portfolio":{"underlying":"SPY","legs":[{"side":"long"}]}}`,
		`{"portfolio":null}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseRequest(data)
		if err != nil {
			return
		}
		n, a, err := Evaluate(p, today)
		if err != nil {
			return
		}
		checkBounded(t, n, a)
	})
}

// TestRefusedLeg: a refusal about one leg names it, 1-based in the order
// the client sent (SPEC §7); one about the whole portfolio names none.
func TestRefusedLeg(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		leg        int
	}{
		{"naked short call", body("short call 100 x1 @3"), 1},
		{"the uncovered short, sent second", body("long put 90 x1", "short call 110 x1"), 2},
		{"ratio spread: the short", body("long call 100 x1 @5", "short call 110 x2 @2"), 2},
		{"ratio spread, short sent first", body("short call 110 x2 @2", "long call 100 x1 @5"), 1},
		{"quantity 101 on the second leg", body("long call 100 x1", "short call 110 x101"), 2},
		{"past expiry on the third leg", body("long call 90 x1", "short call 100 x2", "long call 110 x1 @1 2026-11-21"), 3},
		{"contradicting legs: the later one", body("long call 100 x1 @2", "short call 100 x1 @2"), 2},
		{"quantity over 100 after merging: the first merged", body("long put 90 x1", "long call 100 x60", "long call 100 x50"), 2},
		{"straddle: no single leg", body("long call 100 x1", "long put 100 x1"), 0},
		{"mixed expiries: no single leg", body("long call 100 x1 @1 2026-12-18", "short call 110 x1 @1 2027-01-15"), 0},
		{"five legs: no single leg", body("long put 80 x1", "long put 90 x1", "short put 95 x1", "short call 105 x1", "long call 110 x1"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(tc.body)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("%v: want a refusal", err)
			}
			if re.Leg != tc.leg {
				t.Errorf("leg %d, want %d (%s)", re.Leg, tc.leg, re.Msg)
			}
		})
	}
}
