// Command warden is the governed runtime between AI agents and the systems
// they act on. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/warden-dev/warden/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
