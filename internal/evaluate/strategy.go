package evaluate

import (
	"math"
	"sort"
)

// The six strategies of SPEC §7.
const (
	LongCall       = "long_call"
	LongPut        = "long_put"
	VerticalSpread = "vertical_spread"
	Butterfly      = "butterfly"
	IronCondor     = "iron_condor"
	IronButterfly  = "iron_butterfly"
)

const eps = 1e-9

// classify names the strategy of merged legs (sorted: puts first, then by
// strike) and its unit quantity, or says what keeps them off the list.
func classify(legs []NormalLeg) (string, int, error) {
	switch len(legs) {
	case 1:
		l := legs[0]
		if l.Side == "long" {
			return "long_" + l.Right, l.Quantity, nil
		}
		return "", 0, naked(l)
	case 2:
		a, b := legs[0], legs[1]
		if a.Right != b.Right {
			for _, l := range legs {
				if l.Side == "short" {
					return "", 0, naked(l)
				}
			}
			return "", 0, refused("a long call and a long put (a straddle or strangle) is not one of the six allowed strategies")
		}
		if a.Side == b.Side {
			if a.Side == "short" {
				return "", 0, refused("two short %ss without a covering long %s: the loss is unbounded", a.Right, a.Right)
			}
			return "", 0, refused("two long %ss are not one of the six allowed strategies (a vertical spread is one long and one short leg)", a.Right)
		}
		long, short := a, b
		if long.Side == "short" {
			long, short = b, a
		}
		if long.Quantity != short.Quantity {
			if short.Quantity > long.Quantity {
				return "", 0, refusedLeg(short.first, "ratio spread %d:%d: %d short %ss at %s are covered by only %d long; a vertical spread's legs have equal quantities",
					long.Quantity, short.Quantity, short.Quantity, short.Right, fmtNum(short.Strike), long.Quantity)
			}
			return "", 0, refused("ratio spread %d:%d: a vertical spread's legs have equal quantities", long.Quantity, short.Quantity)
		}
		return VerticalSpread, long.Quantity, nil
	case 3:
		if legs[0].Right != legs[1].Right || legs[1].Right != legs[2].Right {
			for _, l := range legs {
				if l.Side == "short" && !covered(l, legs) {
					return "", 0, naked(l)
				}
			}
			return "", 0, refused("three legs of calls and puts together are not one of the six allowed strategies (a butterfly is all calls or all puts)")
		}
		lo, mid, hi := legs[0], legs[1], legs[2]
		if lo.Side != "long" || mid.Side != "short" || hi.Side != "long" {
			return "", 0, refused("a butterfly is long the lowest and highest strikes and short the middle one; got %s %s, %s %s, %s %s",
				lo.Side, fmtNum(lo.Strike), mid.Side, fmtNum(mid.Strike), hi.Side, fmtNum(hi.Strike))
		}
		if lo.Quantity != hi.Quantity || mid.Quantity != 2*lo.Quantity {
			return "", 0, refused("butterfly quantities must be 1:2:1, got %d:%d:%d", lo.Quantity, mid.Quantity, hi.Quantity)
		}
		if w1, w2 := mid.Strike-lo.Strike, hi.Strike-mid.Strike; math.Abs(w1-w2) > eps*math.Max(1, hi.Strike) {
			return "", 0, refused("broken-wing butterfly: the wings %s and %s are unequal", fmtNum(w1), fmtNum(w2))
		}
		return Butterfly, lo.Quantity, nil
	case 4:
		var puts, calls []NormalLeg
		for _, l := range legs {
			if l.Right == "put" {
				puts = append(puts, l)
			} else {
				calls = append(calls, l)
			}
		}
		if len(puts) != 2 || len(calls) != 2 {
			return "", 0, refused("four legs must be two puts and two calls (an iron condor or an iron butterfly)")
		}
		p1, p2, c1, c2 := puts[0], puts[1], calls[0], calls[1]
		if p1.Side != "long" || p2.Side != "short" || c1.Side != "short" || c2.Side != "long" {
			return "", 0, refused("an iron condor or butterfly is a long put, a short put, a short call and a long call, long on the outside; got put %s %s, put %s %s, call %s %s, call %s %s",
				p1.Side, fmtNum(p1.Strike), p2.Side, fmtNum(p2.Strike), c1.Side, fmtNum(c1.Strike), c2.Side, fmtNum(c2.Strike))
		}
		q := p1.Quantity
		if p2.Quantity != q || c1.Quantity != q || c2.Quantity != q {
			return "", 0, refused("the four legs must have equal quantities, got %d:%d:%d:%d", p1.Quantity, p2.Quantity, c1.Quantity, c2.Quantity)
		}
		k1, k2, k3, k4 := p1.Strike, p2.Strike, c1.Strike, c2.Strike
		switch {
		case k2 == k3 && k1 < k2 && k3 < k4:
			return IronButterfly, q, nil
		case k1 < k2 && k2 < k3 && k3 < k4:
			return IronCondor, q, nil
		}
		return "", 0, refused("condor with crossed strikes: need long put < short put < short call < long call, got %s, %s, %s, %s",
			fmtNum(k1), fmtNum(k2), fmtNum(k3), fmtNum(k4))
	}
	return "", 0, refused("%d legs are not one of the six allowed strategies", len(legs))
}

// covered says whether a short leg has a long leg of its right.
func covered(s NormalLeg, legs []NormalLeg) bool {
	for _, l := range legs {
		if l.Side == "long" && l.Right == s.Right {
			return true
		}
	}
	return false
}

func naked(l NormalLeg) error {
	return refusedLeg(l.first, "short %s at %s without a covering long %s: the loss is unbounded", l.Right, fmtNum(l.Strike), l.Right)
}

// Payoff is the value at expiry, per share of one unit of the strategy, of
// legs when the underlying is at s, premiums included.
func Payoff(legs []NormalLeg, unit int, s float64) float64 {
	var v float64
	for _, l := range legs {
		intrinsic := math.Max(s-l.Strike, 0)
		if l.Right == "put" {
			intrinsic = math.Max(l.Strike-s, 0)
		}
		x := intrinsic - l.Premium
		if l.Side == "short" {
			x = -x
		}
		v += float64(l.Quantity) / float64(unit) * x
	}
	return v
}

// slopeAbove is the payoff's slope beyond the highest strike: only calls
// change there.
func slopeAbove(legs []NormalLeg, unit int) float64 {
	var s float64
	for _, l := range legs {
		if l.Right == "call" {
			m := float64(l.Quantity) / float64(unit)
			if l.Side == "short" {
				m = -m
			}
			s += m
		}
	}
	return s
}

func round(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// analyze computes the extremes and break-evens from the piecewise-linear
// payoff: it bends only at strikes, so its extremes on [0, max strike] are
// at 0 or a strike, and beyond the last strike it moves with the calls.
func analyze(legs []NormalLeg, unit int) *Analysis {
	xs := []float64{0}
	for _, l := range legs {
		xs = append(xs, l.Strike)
	}
	sort.Float64s(xs)
	ys := make([]float64, len(xs))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, x := range xs {
		ys[i] = Payoff(legs, unit, x)
		lo, hi = math.Min(lo, ys[i]), math.Max(hi, ys[i])
	}
	slope := slopeAbove(legs, unit)
	a := &Analysis{MaxLoss: round(-lo), Breakevens: []float64{}}
	if slope < 0 {
		a.MaxLoss = math.Inf(1) // refused before analysis; kept honest here
	}
	if slope <= eps {
		g := round(hi)
		a.MaxGain = &g
	}
	seen := map[float64]bool{}
	add := func(x float64) {
		x = round(x)
		if !seen[x] {
			seen[x] = true
			a.Breakevens = append(a.Breakevens, x)
		}
	}
	for i := range xs {
		if ys[i] == 0 && (i > 0 || xs[i] > 0) {
			add(xs[i])
		}
		if i+1 < len(xs) {
			y0, y1 := ys[i], ys[i+1]
			if (y0 < 0 && y1 > 0) || (y0 > 0 && y1 < 0) {
				add(xs[i] + (0-y0)*(xs[i+1]-xs[i])/(y1-y0))
			}
		}
	}
	last := ys[len(ys)-1]
	if (last < 0 && slope > 0) || (last > 0 && slope < 0) {
		add(xs[len(xs)-1] - last/slope)
	}
	sort.Float64s(a.Breakevens)
	return a
}
