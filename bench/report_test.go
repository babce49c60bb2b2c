package bench

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

const (
	docFile   = "../docs/BENCHMARKS.md"
	chartFile = "../docs/benchmarks.png"
	startMark = "<!-- make bench: start -->"
	endMark   = "<!-- make bench: end -->"
)

// budgetShare is the figure over its budget, so that ≤ 1 means met:
// value/limit for "≤" budgets, limit/value for "≥" ones (ratios).
func budgetShare(f figure) float64 {
	m := regexp.MustCompile(`([≤≥]) ([0-9.]+)`).FindStringSubmatch(f.Budget)
	if m == nil {
		return 0
	}
	limit, _ := strconv.ParseFloat(m[2], 64)
	v := f.Value
	if f.Ratio != 0 {
		v = f.Ratio
	}
	if m[1] == "≥" {
		return limit / v
	}
	return v / limit
}

// write replaces the make-bench section of docs/BENCHMARKS.md and draws
// docs/benchmarks.png.
func write(figs []figure) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## `make bench` — latest run\n\n", startMark)
	fmt.Fprintf(&b, "%s. Machine: %s. Each comparison ran in alternating rounds (A B A B …); figures are medians.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	b.WriteString("| id | figure | value | ratio | budget | met | note |\n|---|---|---|---|---|---|---|\n")
	for _, f := range figs {
		ratio := ""
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f×", f.Ratio)
		}
		budget, met := f.Budget, "yes"
		switch {
		case budget == "": // a figure for comparison (a peer's), not held to a budget
			budget, met = "—", "—"
		case !f.Met:
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f %s | %s | %s | %s | %s |\n", f.ID, f.Name, f.Value, f.Unit, ratio, budget, met, f.Note)
	}
	b.WriteString("\n![each figure over its budget; at or under 1 is met](benchmarks.png)\n" + endMark)

	old, err := os.ReadFile(docFile)
	if err != nil {
		return err
	}
	s := string(old)
	if i, j := strings.Index(s, startMark), strings.Index(s, endMark); i >= 0 && j > i {
		s = s[:i] + b.String() + s[j+len(endMark):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String() + "\n"
	}
	if err := os.WriteFile(docFile, []byte(s), 0o644); err != nil {
		return err
	}
	return chart(figs)
}

func chart(all []figure) error {
	var figs []figure // those with a budget: the others have no share of one
	for _, f := range all {
		if f.Budget != "" {
			figs = append(figs, f)
		}
	}
	p := plot.New()
	p.Title.Text = "hqd: each figure over its budget (≤ 1 is met)"
	p.Y.Label.Text = "figure ÷ budget"
	vals := make(plotter.Values, len(figs))
	names := make([]string, len(figs))
	for i, f := range figs {
		vals[i] = budgetShare(f)
		names[i] = f.ID + " " + shortName(f.Name)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	p.Add(bars)
	line := plotter.NewFunction(func(float64) float64 { return 1 })
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(line)
	p.NominalX(names...)
	p.Y.Min = 0
	return p.Save(vg.Length(80+120*len(figs))*vg.Points(1), 320, chartFile)
}

func shortName(s string) string {
	s = strings.ReplaceAll(s, " through hqd vs MinIO direct (8 workers)", "")
	s = strings.ReplaceAll(s, " (hqd dev)", "")
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}
