package cli

import (
	"errors"
	"fmt"

	"github.com/warden-dev/warden/internal/config"
)

func runValidate(e *env, args []string) int {
	fs := newFlags("validate", "validate [--config DIR]")
	dir := configFlag(fs)
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "warden validate: unexpected argument %q (use --config DIR)\n", pos[0])
		return exitBadArgs
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		printConfigError(e, err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "ok: %s\n", cfg.Version)
	return exitOK
}

// printConfigError prints every config problem, one per line, then a count.
func printConfigError(e *env, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, x := range errs {
			fmt.Fprintln(e.stderr, x.Error())
		}
		noun := "errors"
		if len(errs) == 1 {
			noun = "error"
		}
		fmt.Fprintf(e.stderr, "%d %s\n", len(errs), noun)
		return
	}
	fmt.Fprintf(e.stderr, "error: %v\n", err)
}
