// Package cli implements warden's command line: one file per subcommand, a
// small dispatcher and flag parsing that allows flags after arguments. It
// holds no business logic: commands load config, call the domain packages
// and print.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and found a problem (invalid config, failed test, ...)
	exitBadArgs = 2 // unusable input: bad flags, unknown names, malformed JSON
)

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"validate", "check a config directory; errors name file:line:col", runValidate},
		{"explain", "show the decision, rules and reason for a call, without executing it", runExplain},
		{"test", "run policy test files against a config (a CI gate)", runTest},
		{"serve", "run the gateway: the HTTP API over the store", runServe},
		{"agents", "agent identities: agents token create|revoke AGENT", runAgents},
		{"tokens", "human tokens: tokens create|list|revoke", runTokens},
		{"audit", "the audit trail: audit tail|search|verify|export", runAudit},
		{"kill", "kill switch: refuse every call of agents, a tenant or everything", runKill},
		{"revive", "lift a kill switch", runRevive},
		{"secrets", "the local secret store: secrets set|rotate|revoke NAME, list, rekey", runSecrets},
		{"approvals", "the human checkpoint: approvals list|show|approve|deny", runApprovals},
		{"autonomy", "evidence for widening autonomy: approvals per agent and action, with a recommendation", runAutonomy},
		{"apply", "store a config directory as a new version and make it live in every server on the store", runApply},
		{"versions", "list the stored config versions, newest first, the live one marked *", runVersions},
		{"diff", "show how two config versions differ, document by document", runDiff},
		{"rollback", "make the previously live (or a named) config version live again", runRollback},
		{"migrate", "apply the store's pending schema migrations (--dry-run: list them)", runMigrate},
		{"hook", "Claude Code's PreToolUse/PostToolUse hook: hook claude-code, payload on stdin", runHook},
		{"mcp", "an MCP server over stdio for one agent (mcp --agent A), relaying to a running warden serve", runMCP},
		{"version", "print warden's version", runVersion},
	}
}

// Run runs the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitBadArgs
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "warden: unknown command %q; run 'warden help' for the list\n", args[0])
	return exitBadArgs
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "warden — the governed runtime between AI agents and the systems they act on")
	fmt.Fprintln(w, "\nUsage: warden <command> [flags] [args]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'warden <command> -h' for a command's flags.")
}

// parse parses flags that may appear before, between or after positional
// arguments ("warden test a.yaml --config dir"); "--" ends flags.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, false
			}
			return nil, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, true
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configFlag registers --config with its default: $WARDEN_CONFIG, else
// ./warden.d.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("WARDEN_CONFIG")
	if def == "" {
		def = "warden.d"
	}
	return fs.String("config", def, "config directory (env WARDEN_CONFIG)")
}

func newFlags(name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: warden %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// errorf prints an error line for the running command.
func (e *env) errorf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "error: "+format+"\n", args...)
}

// indent prefixes every line of a multi-line error for readable output.
func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
