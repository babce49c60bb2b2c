package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

func TestEvaluate(t *testing.T) {
	project := itest.LakeProject(t, map[string]map[string]any{"exe:evaluate": {"action": "echo-stdin"}})
	h := jobsHQD(t, itest.LakeProject(t, map[string]map[string]any{"Proving.Basic": {}}), "HQD_EVALUATOR_DIR="+project)
	tok := devSignIn(t, h, "trader@example.com", "Passw0rd!").AccessToken
	leg := func(side, right string, strike float64, qty int, prem float64) map[string]any {
		return map[string]any{"side": side, "right": right, "strike": strike, "expiry": "2030-12-20", "quantity": qty, "premium": prem}
	}
	post := func(legs ...map[string]any) call {
		b, _ := json.Marshal(map[string]any{"portfolio": map[string]any{"underlying": "SPY", "legs": legs}})
		return do(t, "POST", h.URL+"/api/evaluate", tok, strings.NewReader(string(b)))
	}

	a := post(leg("short", "call", 105, 1, 2), leg("long", "put", 90, 1, 1), leg("long", "call", 110, 1, 1), leg("short", "put", 95, 1, 2))
	var ans struct {
		ID, Status, Events, Ticket, Strategy string
		MaxLoss                              float64
		MaxGain                              *float64
		Breakevens                           []float64
	}
	a.decode(t, &ans)
	if a.status != 202 || ans.Strategy != "iron_condor" || ans.MaxLoss != 3 || ans.MaxGain == nil || *ans.MaxGain != 2 ||
		len(ans.Breakevens) != 2 || ans.Breakevens[0] != 93 || ans.Breakevens[1] != 107 || ans.Ticket == "" || ans.Status != "queued" {
		t.Fatalf("POST /api/evaluate = %d %s", a.status, a.body)
	}
	evs := until(t, streamOf(t, h.URL+ans.Events+"?ticket="+ans.Ticket), 10*time.Second)
	var result map[string]any
	for _, ev := range evs {
		if ev.Type == "result" {
			result = ev.Data
		}
	}
	if result == nil || result["stage"] != "result" {
		t.Fatalf("no result event: %v", evs)
	}
	input := result["result"].(map[string]any)["input"].(map[string]any)
	if input["strategy"] != "iron_condor" || input["expiry"] != "2030-12-20" || len(input["legs"].([]any)) != 4 {
		t.Errorf("the kernel got %v on stdin", input)
	}
	if d := evs[len(evs)-1].Data; d["ok"] != true || d["verified"] != true {
		t.Errorf("done = %v", d)
	}
	var list struct {
		Jobs []struct{ ID, Kind, Strategy, Status string }
	}
	do(t, "GET", h.URL+"/api/jobs", tok, nil).decode(t, &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != ans.ID || list.Jobs[0].Kind != "evaluate" || list.Jobs[0].Strategy != "iron_condor" || list.Jobs[0].Status != "done" {
		t.Errorf("GET /api/jobs = %+v", list)
	}

	for name, tc := range map[string]struct {
		legs   []map[string]any
		status int
		code   string
		leg    float64 // the leg the refusal names (SPEC §7); 0: none
	}{
		"naked short call": {[]map[string]any{leg("short", "call", 100, 1, 3)}, 422, "strategy_not_allowed", 1},
		"ratio spread":     {[]map[string]any{leg("long", "call", 100, 1, 3), leg("short", "call", 110, 2, 1)}, 422, "strategy_not_allowed", 2},
		"straddle":         {[]map[string]any{leg("long", "call", 100, 1, 3), leg("long", "put", 100, 1, 1)}, 422, "strategy_not_allowed", 0},
		"unknown side":     {[]map[string]any{leg("sideways", "call", 100, 1, 3)}, 400, "invalid_request", 0},
	} {
		a := post(tc.legs...)
		var body struct{ Error map[string]any }
		_ = json.Unmarshal(a.body, &body)
		got, _ := body.Error["leg"].(float64)
		if a.status != tc.status || a.code() != tc.code || got != tc.leg {
			t.Errorf("%s = %d %s, want %d %s leg %v", name, a.status, a.body, tc.status, tc.code, tc.leg)
		}
	}
	if a := do(t, "POST", h.URL+"/api/evaluate", tok, strings.NewReader(`{"portfolio":{"underlying":"SPY","legs":[]},"extra":1}`)); a.status != 400 {
		t.Errorf("unknown field = %d %s", a.status, a.body)
	}
	// Only the accepted portfolio ever started a process.
	if n := metric(t, h, "hqd_job_run_duration_seconds_count"); n != 1 {
		t.Errorf("%v runs started; want the one of the accepted portfolio", n)
	}
}
