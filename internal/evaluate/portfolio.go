// Package evaluate is the evaluator's safety boundary (SPEC §7): it parses
// an options portfolio strictly, merges identical legs, and accepts it only
// as one of six defined-risk strategies, computing its maximum loss, maximum
// gain and break-evens from the payoff at expiry. Nothing outside the list
// ever reaches the accounting kernel. It knows nothing about HTTP or jobs.
package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/quantapix/hqd/internal/strictjson"
)

// Leg is one options leg as the client sends it.
type Leg struct {
	Side     *string  `json:"side"`
	Right    *string  `json:"right"`
	Strike   *float64 `json:"strike"`
	Expiry   *string  `json:"expiry"`
	Quantity *int     `json:"quantity"`
	Premium  *float64 `json:"premium"`
}

// Portfolio is what POST /api/evaluate carries under "portfolio".
type Portfolio struct {
	Underlying *string `json:"underlying"`
	Legs       []Leg   `json:"legs"`
}

// MalformedError is a body that is not a well-formed portfolio (400).
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return e.Msg }

// RefusedError is a well-formed portfolio outside the allow-list (422).
// Leg names the leg the refusal is about, 1-based in the order the client
// sent, or 0 when no single leg is at fault.
type RefusedError struct {
	Msg string
	Leg int
}

func (e *RefusedError) Error() string { return e.Msg }

func malformed(format string, args ...any) error {
	return &MalformedError{Msg: fmt.Sprintf(format, args...)}
}

func refused(format string, args ...any) error {
	return &RefusedError{Msg: fmt.Sprintf(format, args...)}
}

// refusedLeg is a refusal about leg n (1-based, as sent).
func refusedLeg(n int, format string, args ...any) error {
	return &RefusedError{Msg: fmt.Sprintf(format, args...), Leg: n}
}

// NormalLeg is a merged, validated leg.
type NormalLeg struct {
	Side     string  `json:"side"`
	Right    string  `json:"right"`
	Strike   float64 `json:"strike"`
	Quantity int     `json:"quantity"`
	Premium  float64 `json:"premium"`
	first    int     // the first leg merged into it, 1-based as sent: where a refusal points
}

// Normalized is an accepted portfolio as the kernel gets it on stdin.
type Normalized struct {
	Underlying string      `json:"underlying"`
	Expiry     string      `json:"expiry"`
	Strategy   string      `json:"strategy"`
	Legs       []NormalLeg `json:"legs"` // by right (puts first), then strike, then side
}

// Analysis is what the POST answer adds: per share of one unit.
type Analysis struct {
	Strategy   string    `json:"strategy"`
	MaxLoss    float64   `json:"maxLoss"`
	MaxGain    *float64  `json:"maxGain"` // nil where unbounded
	Breakevens []float64 `json:"breakevens"`
}

var (
	underlyingRE = regexp.MustCompile(`^[A-Za-z0-9.^/_-]{1,32}$`)
	dateRE       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// Limits of SPEC §7.
const (
	maxLegs     = 4   // after merging
	maxRawLegs  = 16  // before merging: more is not a portfolio anyone means
	maxQuantity = 100 // per merged leg
)

// ParseRequest reads {"portfolio": …} strictly.
func ParseRequest(body []byte) (*Portfolio, error) {
	var in struct {
		Portfolio *Portfolio `json:"portfolio"`
	}
	if err := strictjson.Decode(body, &in); err != nil {
		return nil, malformed("malformed portfolio: %s", jsonProblem(err))
	}
	if in.Portfolio == nil {
		return nil, malformed("the body needs a portfolio object")
	}
	return in.Portfolio, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s must be %s", te.Field, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Evaluate validates p, merges its legs and classifies it. today is the
// current UTC date (expiries before it are refused).
func Evaluate(p *Portfolio, today time.Time) (*Normalized, *Analysis, error) {
	if p.Underlying == nil || !underlyingRE.MatchString(*p.Underlying) {
		return nil, nil, malformed("portfolio.underlying must be a ticker like SPY")
	}
	if len(p.Legs) == 0 {
		return nil, nil, malformed("portfolio.legs must list at least one leg")
	}
	if len(p.Legs) > maxRawLegs {
		return nil, nil, refused("%d legs: at most %d are allowed", len(p.Legs), maxLegs)
	}
	type key struct {
		side, right string
		strike      float64
		expiry      string
	}
	merged := map[key]*NormalLeg{}
	firstIndex := map[key]int{}
	var order []key
	expiries := map[string]bool{}
	var expiryList []string
	day := today.UTC().Format("2006-01-02")
	for i, l := range p.Legs {
		n := i + 1
		switch {
		case l.Side == nil || (*l.Side != "long" && *l.Side != "short"):
			return nil, nil, malformed("leg %d: side must be long or short", n)
		case l.Right == nil || (*l.Right != "call" && *l.Right != "put"):
			return nil, nil, malformed("leg %d: right must be call or put", n)
		case l.Strike == nil:
			return nil, nil, malformed("leg %d: strike is required", n)
		case l.Expiry == nil || !dateRE.MatchString(*l.Expiry):
			return nil, nil, malformed("leg %d: expiry must be a date like 2026-12-18", n)
		case l.Quantity == nil:
			return nil, nil, malformed("leg %d: quantity is required", n)
		}
		if _, err := time.Parse("2006-01-02", *l.Expiry); err != nil {
			return nil, nil, malformed("leg %d: expiry %s is not a date", n, *l.Expiry)
		}
		prem := 0.0
		if l.Premium != nil {
			prem = *l.Premium
		}
		switch {
		case !(*l.Strike > 0) || math.IsInf(*l.Strike, 0) || *l.Strike > 1e9:
			return nil, nil, refusedLeg(n, "leg %d: strike must be more than 0", n)
		case *l.Quantity < 1:
			return nil, nil, refusedLeg(n, "leg %d: quantity must be at least 1", n)
		case *l.Quantity > maxQuantity:
			return nil, nil, refusedLeg(n, "leg %d: quantity %d is over %d", n, *l.Quantity, maxQuantity)
		case prem < 0 || math.IsNaN(prem) || prem > 1e9:
			return nil, nil, refusedLeg(n, "leg %d: premium must be 0 or more", n)
		case *l.Expiry < day:
			return nil, nil, refusedLeg(n, "leg %d: expiry %s is in the past", n, *l.Expiry)
		}
		if !expiries[*l.Expiry] {
			expiries[*l.Expiry] = true
			expiryList = append(expiryList, *l.Expiry)
		}
		k := key{*l.Side, *l.Right, *l.Strike, *l.Expiry}
		if m, ok := merged[k]; ok {
			total := m.Quantity + *l.Quantity
			m.Premium = (m.Premium*float64(m.Quantity) + prem*float64(*l.Quantity)) / float64(total)
			m.Quantity = total
			continue
		}
		merged[k] = &NormalLeg{Side: *l.Side, Right: *l.Right, Strike: *l.Strike, Quantity: *l.Quantity, Premium: prem, first: n}
		firstIndex[k] = n
		order = append(order, k)
	}
	if len(expiryList) > 1 {
		sort.Strings(expiryList)
		return nil, nil, refused("mixed expiries %s: every leg must expire on the same day", strings.Join(expiryList, " and "))
	}
	for _, k := range order {
		other := key{map[string]string{"long": "short", "short": "long"}[k.side], k.right, k.strike, k.expiry}
		if _, ok := merged[other]; ok && firstIndex[k] < firstIndex[other] {
			return nil, nil, refusedLeg(firstIndex[other], "legs %d and %d: a long and a short %s at %s on the same expiry contradict each other",
				firstIndex[k], firstIndex[other], k.right, fmtNum(k.strike))
		}
	}
	legs := make([]NormalLeg, 0, len(order))
	for _, k := range order {
		m := merged[k]
		if m.Quantity > maxQuantity {
			return nil, nil, refusedLeg(m.first, "%s %s at %s: quantity %d after merging is over %d", m.Side, m.Right, fmtNum(m.Strike), m.Quantity, maxQuantity)
		}
		legs = append(legs, *m)
	}
	if len(legs) > maxLegs {
		return nil, nil, refused("%d legs after merging: at most %d are allowed", len(legs), maxLegs)
	}
	sort.SliceStable(legs, func(i, j int) bool {
		if legs[i].Right != legs[j].Right {
			return legs[i].Right == "put"
		}
		if legs[i].Strike != legs[j].Strike {
			return legs[i].Strike < legs[j].Strike
		}
		return legs[i].Side < legs[j].Side
	})
	strategy, unit, err := classify(legs)
	if err != nil {
		return nil, nil, err
	}
	n := &Normalized{Underlying: *p.Underlying, Expiry: expiryList[0], Strategy: strategy, Legs: legs}
	a := analyze(legs, unit)
	a.Strategy = strategy
	return n, a, nil
}

func fmtNum(f float64) string { return fmt.Sprintf("%g", f) }
