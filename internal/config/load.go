package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is one config file's name (as shown in errors) and content.
type File struct {
	Name string
	Data []byte
}

// IsTestFile reports whether a file name is a policy test file
// (*_test.yaml, *_test.yml), which config loading skips so that tests can
// live beside the config they test.
func IsTestFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, "_test.yaml") || strings.HasSuffix(base, "_test.yml")
}

// Load reads every *.yaml and *.yml file under dir (recursively, skipping
// hidden directories and *_test.yaml files) and parses them as one config.
// A problem in the config is returned as Errors.
func Load(dir string) (*Config, error) {
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return Parse(files)
}

// ReadDir reads the config files under dir in a stable order.
func ReadDir(dir string) ([]File, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("config directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("config directory: %s is not a directory", dir)
	}
	var files []File
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != dir && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if (ext != ".yaml" && ext != ".yml") || IsTestFile(path) || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, File{Name: path, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("config directory %s holds no *.yaml or *.yml files", dir)
	}
	return files, nil
}

// Parse parses and validates config files. Problems are returned as Errors,
// sorted by position, all of them.
func Parse(files []File) (*Config, error) {
	var errs Errors
	cfg := &Config{}
	for _, f := range files {
		parseFile(f, cfg, &errs)
	}
	if len(cfg.Agents)+len(cfg.Connectors)+len(cfg.Policies) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{Pos: Pos{File: fileList(files)}, Msg: "no agent, connector or policy documents found"})
	}
	link(cfg, &errs)
	linkAlerts(cfg, &errs)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	sortConfig(cfg)
	v, err := version(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Version = v
	return cfg, nil
}

func fileList(files []File) string {
	if len(files) == 1 {
		return files[0].Name
	}
	return "config"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func parseFile(f File, cfg *Config, errs *Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	d := &decoder{file: f.Name, errs: errs}
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The YAML parser cannot resume after a syntax error.
			msg := err.Error()
			line := 0
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = msg[len(m[0]):]
			} else {
				msg = strings.TrimPrefix(msg, "yaml: ")
			}
			p := Pos{File: f.Name, Line: line}
			if line > 0 {
				p.Col = 1
			}
			*errs = append(*errs, &Error{Pos: p, Msg: "invalid YAML: " + msg})
			return
		}
		if len(doc.Content) == 0 {
			continue // an empty document: only comments, or a stray ---
		}
		d.document(doc.Content[0], cfg)
	}
}

func (d *decoder) document(n *yaml.Node, cfg *Config) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "a document must be a mapping with a kind, got %s", kindName(n))
		return
	}
	var kind *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kind = n.Content[i+1]
		}
	}
	if kind == nil {
		d.errorf(n, "document has no kind; expected kind: agent, connector or policy")
		return
	}
	k, ok := d.str(kind, "kind")
	if !ok {
		return
	}
	switch k {
	case "agent":
		if a := d.agent(n); a != nil {
			cfg.Agents = append(cfg.Agents, a)
		}
	case "connector":
		if c := d.connector(n); c != nil {
			cfg.Connectors = append(cfg.Connectors, c)
		}
	case "policy":
		if p := d.policy(n); p != nil {
			cfg.Policies = append(cfg.Policies, p)
		}
	case "approvals":
		d.approvals(n, cfg)
	case "alerts":
		d.alerts(n, cfg) // alerts.go
	default:
		d.errorf(kind, "unknown kind %q; expected agent, connector, policy or approvals", k)
	}
}

// kindField accepts the kind key, which document() has already read.
func kindField() field { return field{key: "kind", required: true, set: func(*yaml.Node) {}} }

// nameRE is what agent, connector, policy, rule and action names may look
// like: they appear in URLs, metric labels and MCP tool names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$`)

func (d *decoder) name(dst *string, what string) func(*yaml.Node) {
	return func(n *yaml.Node) {
		s, ok := d.str(n, what)
		if !ok {
			return
		}
		if !nameRE.MatchString(s) {
			d.errorf(d.resolve(n), "%s %q is not a valid name; expected letters, digits, '_', '.', ':' or '-' (at most 128, not starting with '.', ':' or '-')", what, s)
			return
		}
		*dst = s
	}
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// MarshalText writes the duration in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *decoder) duration(n *yaml.Node, what string) (Duration, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		d.errorf(d.resolve(n), "%s must be a positive duration such as 30s or 2m, got %q", what, s)
		return 0, false
	}
	return Duration(v), true
}
