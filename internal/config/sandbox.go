package config

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress/allowlist"
	"github.com/warden-dev/warden/internal/sandbox/layout"
	"go.yaml.in/yaml/v3"
)

// Sandbox is a connector's `sandbox:` block and its `egress:` list: the
// boundary the commands of an exec connector (always) and the stdio server
// of an mcp connector (when the block is present) run in. Zero values take
// the sandbox package's defaults. See docs/sandbox.md.
type Sandbox struct {
	// Binds are host paths bound read-only; empty: the default minimal
	// root (/usr, /lib*, /bin, /etc/ssl, ...).
	Binds   []string       `json:"binds,omitempty"`
	Workdir SandboxWorkdir `json:"workdir"`
	Limits  SandboxLimits  `json:"limits"`
	// Egress lists the host names the sandbox may reach through warden's
	// filtering proxy; empty: no network at all.
	Egress []string `json:"egress,omitempty"`
}

// SandboxWorkdir configures the writable per-call work directory.
type SandboxWorkdir struct {
	Seed string `json:"seed,omitempty"` // absolute host directory copied in before each call
	Keep bool   `json:"keep,omitempty"` // keep the directory after the call
}

// SandboxLimits bound one sandboxed command; zero fields take the
// defaults (docs/sandbox.md), and an action's limits override its
// connector's field by field.
type SandboxLimits struct {
	CPU          Duration `json:"cpu,omitempty"`
	Memory       ByteSize `json:"memory,omitempty"`
	AddressSpace ByteSize `json:"address_space,omitempty"`
	Processes    int64    `json:"processes,omitempty"`
	FileSize     ByteSize `json:"file_size,omitempty"`
	OpenFiles    int64    `json:"open_files,omitempty"`
	Timeout      Duration `json:"timeout,omitempty"`
	Output       ByteSize `json:"output,omitempty"`
	Tmp          ByteSize `json:"tmp,omitempty"`
}

// Merge returns l with every zero field taken from base.
func (l SandboxLimits) Merge(base SandboxLimits) SandboxLimits {
	pick := func(v, b int64) int64 {
		if v == 0 {
			return b
		}
		return v
	}
	return SandboxLimits{
		CPU:          Duration(pick(int64(l.CPU), int64(base.CPU))),
		Memory:       ByteSize(pick(int64(l.Memory), int64(base.Memory))),
		AddressSpace: ByteSize(pick(int64(l.AddressSpace), int64(base.AddressSpace))),
		Processes:    pick(l.Processes, base.Processes),
		FileSize:     ByteSize(pick(int64(l.FileSize), int64(base.FileSize))),
		OpenFiles:    pick(l.OpenFiles, base.OpenFiles),
		Timeout:      Duration(pick(int64(l.Timeout), int64(base.Timeout))),
		Output:       ByteSize(pick(int64(l.Output), int64(base.Output))),
		Tmp:          ByteSize(pick(int64(l.Tmp), int64(base.Tmp))),
	}
}

// ByteSize is a size in bytes, written as an integer or with a unit:
// 512KiB, 256MiB, 1GiB (or KB, MB, GB, also powers of 1024).
type ByteSize int64

var byteSizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|K|KB|KiB|M|MB|MiB|G|GB|GiB)?$`)

// ParseByteSize parses a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("not a size such as 4096, 512KiB, 256MiB or 1GiB: %q", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	mult := int64(1)
	switch m[2] {
	case "K", "KB", "KiB":
		mult = 1 << 10
	case "M", "MB", "MiB":
		mult = 1 << 20
	case "G", "GB", "GiB":
		mult = 1 << 30
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// sandboxKeys collects a connector document's `sandbox:` and `egress:`
// keys while it is read; finishSandbox checks them once the type is known.
type sandboxKeys struct {
	s      Sandbox
	block  *yaml.Node // the sandbox: value, nil when absent
	egress *yaml.Node // the egress: value, nil when absent
}

// sandboxFields are the `sandbox` and `egress` keys of a connector.
func (d *decoder) sandboxFields(k *sandboxKeys) []field {
	return []field{
		{key: "sandbox", set: func(v *yaml.Node) {
			k.block = v
			d.object(v, "sandbox",
				field{key: "binds", set: func(v *yaml.Node) {
					for _, b := range d.strList(v, "sandbox binds") {
						if !filepath.IsAbs(b) || filepath.Clean(b) == "/" {
							d.errorf(d.resolve(v), "sandbox binds: %q must be an absolute path other than /", b)
							continue
						}
						b = filepath.Clean(b)
						if r := layout.ReservedBind(b); r != "" {
							d.errorf(d.resolve(v), "sandbox binds: %q is the sandbox's own %s; it cannot be bound from the host", b, r)
							continue
						}
						k.s.Binds = append(k.s.Binds, b)
					}
				}},
				field{key: "workdir", set: func(v *yaml.Node) {
					d.object(v, "sandbox workdir",
						field{key: "seed", set: func(v *yaml.Node) {
							s, ok := d.str(v, "sandbox workdir seed")
							if ok && !filepath.IsAbs(s) {
								d.errorf(d.resolve(v), "sandbox workdir seed %q must be an absolute path", s)
								return
							}
							k.s.Workdir.Seed = s
						}},
						field{key: "keep", set: func(v *yaml.Node) { k.s.Workdir.Keep, _ = d.boolean(v, "sandbox workdir keep") }},
					)
				}},
				field{key: "limits", set: func(v *yaml.Node) { k.s.Limits = d.sandboxLimits(v, "sandbox limits") }},
			)
		}},
		{key: "egress", set: func(v *yaml.Node) {
			k.egress = v
			rv := d.resolve(v)
			if rv == nil {
				return
			}
			if rv.Kind != yaml.SequenceNode {
				d.errorf(rv, "egress must be a list of host names, got %s", kindName(rv))
				return
			}
			for _, en := range rv.Content {
				e, ok := d.str(en, "egress entry")
				if !ok {
					continue
				}
				if _, err := allowlist.ParseRule(e); err != nil {
					d.errorf(d.resolve(en), "%v", err)
					continue
				}
				k.s.Egress = append(k.s.Egress, e)
			}
		}},
	}
}

// finishSandbox puts the block on the connector: always for exec, for mcp
// when written (and only with a command), and nowhere else.
func (d *decoder) finishSandbox(c *Connector, k *sandboxKeys) {
	switch c.Type {
	case TypeExec:
		s := k.s
		c.Sandbox = &s
	case TypeMCP:
		if k.block == nil {
			if k.egress != nil {
				d.errorf(k.egress, "egress applies to a sandboxed command: add a sandbox: block to mcp connector %q", c.Name)
			}
			return
		}
		if c.MCP != nil && c.MCP.URL != "" {
			d.errorf(k.block, "mcp connector %q: sandbox applies to a command (a stdio server), not to a url", c.Name)
			return
		}
		s := k.s
		c.Sandbox = &s
	case "":
	default:
		for _, n := range []*yaml.Node{k.block, k.egress} {
			if n != nil {
				d.errorf(n, "connector type %s does not take sandbox or egress (they belong to exec and mcp connectors)", c.Type)
			}
		}
	}
}

// sandboxLimits decodes a limits mapping.
func (d *decoder) sandboxLimits(n *yaml.Node, what string) SandboxLimits {
	var l SandboxLimits
	dur := func(dst *Duration, key string, max time.Duration) field {
		return field{key: key, set: func(v *yaml.Node) {
			x, ok := d.duration(v, what+" "+key)
			if ok && time.Duration(x) > max {
				d.errorf(d.resolve(v), "%s %s must be at most %v, got %v", what, key, max, time.Duration(x))
				return
			}
			*dst = x
		}}
	}
	size := func(dst *ByteSize, key string) field {
		return field{key: key, set: func(v *yaml.Node) { *dst = d.byteSize(v, what+" "+key) }}
	}
	count := func(dst *int64, key string, max int64) field {
		return field{key: key, set: func(v *yaml.Node) {
			x, ok := d.integer(v, what+" "+key)
			if ok && (x < 1 || x > max) {
				d.errorf(d.resolve(v), "%s %s must be between 1 and %d, got %d", what, key, max, x)
				return
			}
			*dst = x
		}}
	}
	d.object(n, what,
		dur(&l.CPU, "cpu", 24*time.Hour),
		size(&l.Memory, "memory"),
		size(&l.AddressSpace, "address_space"),
		count(&l.Processes, "processes", 1<<20),
		size(&l.FileSize, "file_size"),
		count(&l.OpenFiles, "open_files", 1<<20),
		dur(&l.Timeout, "timeout", 24*time.Hour),
		size(&l.Output, "output"),
		size(&l.Tmp, "tmp"),
	)
	return l
}

// byteSize decodes an integer number of bytes or a size with a unit.
func (d *decoder) byteSize(n *yaml.Node, what string) ByteSize {
	n = d.resolve(n)
	if n == nil {
		return 0
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		d.errorf(n, "%s must be a size such as 4096, 512KiB, 256MiB or 1GiB, got %s", what, kindName(n))
		return 0
	}
	v, err := ParseByteSize(n.Value)
	if err == nil && v <= 0 {
		err = fmt.Errorf("must be positive")
	}
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return 0
	}
	return v
}
