package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKillWithinOneSecondUnderLoad: agents call continuously while `warden
// kill` (cli.Run, its own connection to the store) stops them. Within a
// second of the kill every new call is refused by the kill switch and
// nothing the agent sends reaches the upstream; the pending approvals are
// cancelled with an audited refusal and their long polls return.
func TestKillWithinOneSecondUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	e := aprSetup(t, 0)
	type pend struct{ call, apr, order string }
	var pending []pend
	for i := range 3 {
		order := fmt.Sprintf("pending-%d", i)
		c, a := e.pending(e.agent, "refund", order, nil)
		pending = append(pending, pend{c, a, order})
	}
	// Long polls waiting for the humans; they must return with the kill.
	type polled struct {
		status, reason string
		at             time.Time
	}
	polls := make([]chan polled, len(pending))
	for i, p := range pending {
		polls[i] = make(chan polled, 1)
		go func() {
			req, _ := http.NewRequest("GET", e.url+"/v1/calls/"+p.call+"?wait=20s", nil)
			req.Header.Set("Authorization", "Bearer "+e.agent)
			var m map[string]any
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
			}
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			polls[i] <- polled{s, r, time.Now()}
		}()
	}

	type result struct {
		order  string
		sent   time.Time
		code   int
		reason string
		rule   string
	}
	var (
		mu      sync.Mutex
		results []result
		seq     atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				order := fmt.Sprintf("load-%d-%d", w, seq.Add(1))
				b, _ := json.Marshal(map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": order, "amount": 1}})
				req, _ := http.NewRequest("POST", e.url+"/v1/calls", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+e.agent)
				req.Header.Set("Content-Type", "application/json")
				r := result{order: order, sent: time.Now()}
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				r.code = resp.StatusCode
				r.reason, _ = m["reason"].(string)
				if rules, _ := m["rules"].([]any); len(rules) > 0 {
					r.rule, _ = rules[0].(string)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // some load before the kill

	code, out, errOut := e.cli("kill", "bot", "--by", "oncall", "--reason", "loop")
	killed := time.Now() // the kill is committed when the command returns
	if code != 0 || !strings.Contains(out, "killed default/bot by oncall") {
		close(stop)
		wg.Wait()
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	time.Sleep(1500 * time.Millisecond) // load keeps running past the one-second mark
	close(stop)
	wg.Wait()

	effective := killed.Add(time.Second)
	var before, after int
	for _, r := range results {
		if r.code == http.StatusForbidden && r.rule != "kill-switch" {
			t.Errorf("call %s: 403 by %q, want the kill switch", r.order, r.rule)
		}
		if !r.sent.After(effective) {
			before++
			continue
		}
		after++
		if r.code != http.StatusForbidden || r.rule != "kill-switch" || !strings.Contains(r.reason, "killed by oncall") {
			t.Errorf("call %s sent %v after the kill: %d %q, want 403 by the kill switch", r.order, r.sent.Sub(killed), r.code, r.reason)
		}
		if n := e.up.count("/payouts/" + r.order); n != 0 {
			t.Errorf("call %s sent after the kill reached the upstream %d times", r.order, n)
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("load: %d calls before the kill took effect, %d after; want both", before, after)
	}
	for _, r := range results {
		if r.code == http.StatusForbidden && e.up.count("/payouts/"+r.order) != 0 {
			t.Errorf("refused call %s reached the upstream", r.order)
		}
	}

	for i, p := range pending {
		select {
		case got := <-polls[i]:
			if got.status != "refused" || !strings.Contains(got.reason, "killed by oncall") {
				t.Errorf("long poll of %s: %q %q, want refused by the kill", p.call, got.status, got.reason)
			}
			// The sweep runs every 250 ms: within the second the contract allows.
			if d := got.at.Sub(killed); d > time.Second {
				t.Errorf("long poll of %s returned %v after the kill", p.call, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("long poll of %s did not return after the kill", p.call)
		}
		recs := e.records(p.call)
		if got, want := kinds(recs), "decision,outcome"; got != want {
			t.Errorf("records of %s: got %s, want %s", p.call, got, want)
		} else if last := recs[1]; last.Outcome != "refused" || !strings.Contains(last.Reason, "killed by oncall") || last.Rules[0] != "kill-switch" {
			t.Errorf("cancel record: %+v", last)
		}
		// Approving now is refused: nothing is pending any more.
		if code, m := e.do("POST", "/v1/approvals/"+p.apr+"/approve", e.tokens["alice"], nil); code != http.StatusConflict {
			t.Errorf("approve after the kill: %d %v, want 409", code, m)
		}
		if n := e.up.count("/refunds/" + p.order); n != 0 {
			t.Errorf("cancelled refund %s reached the upstream", p.order)
		}
	}
	// The other tenant's agent of the same name was not touched.
	if code, m := e.do("POST", "/v1/calls", e.tokens["other-agent"], map[string]any{"connector": "pay", "action": "refund", "args": map[string]any{"order": "o1", "amount": 1}}); code != http.StatusAccepted {
		t.Errorf("other tenant after the kill: %d %v, want 202", code, m)
	}
}
