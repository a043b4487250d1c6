//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"io"
)

var errUnsupported = errors.New("the sandbox needs Linux (bubblewrap, namespaces, seccomp)")

// Available reports whether commands can be sandboxed here: never, off Linux.
func Available() error { return errUnsupported }

// Run is not available off Linux.
func Run(context.Context, Spec) (*Result, error) { return nil, errUnsupported }

// Process is a command running in a sandbox.
type Process struct {
	Stdin  io.WriteCloser
	Stdout io.ReadCloser
}

// Start is not available off Linux.
func Start(context.Context, Spec) (*Process, error) { return nil, errUnsupported }

// Wait is not available off Linux.
func (p *Process) Wait() (*Result, error) { return nil, errUnsupported }

// Kill is not available off Linux.
func (p *Process) Kill() {}

// Done is not available off Linux.
func (p *Process) Done() <-chan struct{} { return nil }

// LandlockABI is 0 off Linux.
func LandlockABI() int { return 0 }
