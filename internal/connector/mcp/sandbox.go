package mcp

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/config"
	execconn "github.com/warden-dev/warden/internal/connector/exec"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
)

// SandboxStart returns a Launch.Start that runs a stdio upstream inside
// the connector's sandbox (bubblewrap: read-only root, private work dir,
// no network unless sb lists egress hosts, rlimits). The process lives as
// long as its session: closing the session closes its stdin, and kills it
// if it has not exited a moment later; the function returned with the
// transport kills it at once. o.Redact scrubs its captured stderr and
// what its egress attempts show; o.Audit is told of each attempt. The
// server serves every call of its sessions, so its attempts are reported
// with no call in ctx and no action, and under the config version of the
// executor that started it.
func SandboxStart(sb *config.Sandbox, o execconn.Options) func(ctx context.Context, cmd string, args, env []string) (sdk.Transport, func(), error) {
	var audit func(egress.Attempt) error
	if au := o.Audit; au != nil {
		audit = func(a egress.Attempt) error { return au(context.Background(), "", a) }
	}
	return func(ctx context.Context, cmd string, args, env []string) (sdk.Transport, func(), error) {
		vars := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if k == "PATH" || k == "HOME" || k == "TMPDIR" {
				continue // the sandbox has its own
			}
			vars[k] = v
		}
		spec := execconn.SandboxSpec(sb, append([]string{cmd}, args...), vars, execconn.Limits(sb.Limits), o, audit)
		// The process outlives the call that starts it: its life is the
		// session's, ended by Close below, not by ctx.
		p, err := sandbox.Start(context.WithoutCancel(ctx), spec)
		if err != nil {
			return nil, nil, err
		}
		return &sdk.IOTransport{Reader: p.Stdout, Writer: &sandboxStdin{p: p}}, p.Kill, nil
	}
}

// sandboxStdin is a sandboxed upstream's stdin; closing it ends the
// process and releases the sandbox.
type sandboxStdin struct {
	p    *sandbox.Process
	once sync.Once
}

func (s *sandboxStdin) Write(b []byte) (int, error) { return s.p.Stdin.Write(b) }

func (s *sandboxStdin) Close() error {
	var err error
	s.once.Do(func() {
		err = s.p.Stdin.Close()
		t := time.NewTimer(2 * time.Second)
		select {
		case <-s.p.Done():
		case <-t.C:
			s.p.Kill()
		}
		t.Stop()
		_, werr := s.p.Wait()
		if werr != nil && !errors.Is(werr, io.EOF) {
			err = errors.Join(err, werr)
		}
	})
	return err
}
