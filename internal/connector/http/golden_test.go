package http_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	httpconn "github.com/warden-dev/warden/internal/connector/http"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestRequestsGolden pins the wire form of rendered requests: method,
// escaped path and query, headers and body, for a connector that exercises
// every template position.
func TestRequestsGolden(t *testing.T) {
	var dump strings.Builder
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(&dump, "%s %s\n", r.Method, r.URL.RequestURI())
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range r.Header {
				if k != "Accept-Encoding" && !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&dump, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
		}
		fmt.Fprintf(&dump, "\n%s\n", body)
	}))
	defer srv.Close()

	c := newConnector(t, httpconn.Config{
		Name:    "golden",
		BaseURL: srv.URL + "/api/v1",
		Headers: map[string]string{"Authorization": "Bearer {credentials.token}", "Accept": "application/json"},
		Actions: map[string]httpconn.Action{
			"get_repo": {
				Path:  "/repos/{args.repo.owner}/{args.repo.name}",
				Query: map[string]string{"ref": "{args.ref}", "page": "{args.page}"},
			},
			"literal_path": {
				Path:  "/search results/{{id}}/{args.id}",
				Query: map[string]string{"q": "{args.q}"},
			},
			"create_issue": {
				Method:  "POST",
				Path:    "/repos/{args.repo.owner}/{args.repo.name}/issues",
				Headers: map[string]string{"Idempotency-Key": "{args.key}", "Accept": "application/vnd.github+json"},
				Body:    map[string]any{"title": "[agent] {args.title}", "labels": "{args.labels}", "meta": map[string]any{"repo": "{args.repo}", "n": "{args.page}", "fixed": 1.5}},
			},
			"replace": {Method: "PUT", Path: "/things/{args.id}", Body: "{args}"},
		},
	})
	args := map[string]any{
		"repo":   map[string]any{"owner": "octo cat", "name": "hello/world"},
		"ref":    "feature/x y&z=1",
		"page":   int64(2),
		"id":     "ü?#",
		"q":      "a+b c",
		"key":    "k-1",
		"title":  "Fix <bug> & \"quotes\"",
		"labels": []any{"bug", "p1"},
	}
	resolve := creds(map[string]string{"token": "T0KEN"})
	for _, action := range []string{"get_repo", "literal_path", "create_issue", "replace"} {
		fmt.Fprintf(&dump, "### %s\n", action)
		if _, err := c.Execute(context.Background(), action, args, resolve); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}

	const golden = "testdata/requests.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(dump.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := dump.String(); got != string(want) {
		t.Errorf("requests differ from %s (go test -update rewrites it)\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}
