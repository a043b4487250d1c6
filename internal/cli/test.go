package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/policy"
)

func runTest(e *env, args []string) int {
	fs := newFlags("test", "test [--config DIR] FILE...")
	dir := configFlag(fs)
	verbose := fs.Bool("v", false, "print every case, not only failures")
	files, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(files) == 0 {
		fmt.Fprintln(e.stderr, "warden test: name at least one test file, e.g. warden test --config warden.d warden.d/policy_test.yaml")
		return exitBadArgs
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		printConfigError(e, err)
		return exitBadArgs
	}
	eng := policy.New(cfg)
	passed, failed := 0, 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(e.stderr, "warden test: %v\n", err)
			return exitBadArgs
		}
		cases, err := config.ParseTests(config.File{Name: name, Data: data})
		if err != nil {
			printConfigError(e, err)
			return exitBadArgs
		}
		for _, tc := range cases {
			c := tc.Call
			v := eng.Decide(&c)
			if problem := compare(tc, v); problem != "" {
				failed++
				fmt.Fprintf(e.stdout, "FAIL %s: %s: %s\n", tc.Pos, tc.Name, problem)
				continue
			}
			passed++
			if *verbose {
				fmt.Fprintf(e.stdout, "ok   %s: %s: %s\n", tc.Pos, tc.Name, v.Decision)
			}
		}
	}
	fmt.Fprintf(e.stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// compare returns what differs between a case's expectation and the verdict.
func compare(tc *config.TestCase, v call.Verdict) string {
	decisionOK := v.Decision == tc.Expect.Decision
	rulesOK := tc.Expect.Rules == nil || slices.Equal(tc.Expect.Rules, v.Rules)
	if decisionOK && rulesOK {
		return ""
	}
	want := string(tc.Expect.Decision)
	if tc.Expect.Rules != nil {
		want += " [" + strings.Join(tc.Expect.Rules, ", ") + "]"
	}
	return fmt.Sprintf("expected %s, got %s [%s] (%s)", want, v.Decision, strings.Join(v.Rules, ", "), v.Reason)
}
