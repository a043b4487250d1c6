// Package deploy holds the Dockerfile's and the Kubernetes manifests' tests.
// No cluster or Docker engine runs here, so the manifests are checked as
// data: that they parse, that their selectors, ports and probes agree, that
// they run warden as an unprivileged non-root user with secrets from a
// Secret, and that the flags and environment they pass exist in this build.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/cli"
	"go.yaml.in/yaml/v3"
)

type doc = map[string]any

// get walks a decoded YAML document: get(d, "spec", "template", 0, ...).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

// manifests reads every document the kustomization applies, by kind.
func manifests(t *testing.T) map[string]doc {
	t.Helper()
	var kust doc
	readYAML(t, "kubernetes/kustomization.yaml", func(d doc) { kust = d })
	byKind := map[string]doc{}
	for _, r := range get(kust, "resources").([]any) {
		readYAML(t, filepath.Join("kubernetes", r.(string)), func(d doc) {
			kind := str(d, "kind")
			if kind == "" || str(d, "apiVersion") == "" || str(d, "metadata", "name") == "" {
				t.Errorf("%s: a document without kind, apiVersion or metadata.name", r)
			}
			if _, dup := byKind[kind]; dup {
				t.Errorf("%s: a second %s", r, kind)
			}
			byKind[kind] = d
		})
	}
	// Every manifest in the directory is applied, or says why not.
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != "secret.example.yaml" && !slices.Contains(get(kust, "resources").([]any), any(base)) {
			t.Errorf("%s is not listed in kustomization.yaml", base)
		}
	}
	return byKind
}

func readYAML(t *testing.T, path string, each func(doc)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			each(d)
		}
	}
}

func TestManifests(t *testing.T) {
	m := manifests(t)
	for kind, api := range map[string]string{
		"Namespace": "v1", "ServiceAccount": "v1", "Deployment": "apps/v1", "Service": "v1",
		"PodDisruptionBudget": "policy/v1", "ServiceMonitor": "monitoring.coreos.com/v1",
		"NetworkPolicy": "networking.k8s.io/v1",
	} {
		if m[kind] == nil {
			t.Errorf("no %s", kind)
		} else if got := str(m[kind], "apiVersion"); got != api {
			t.Errorf("%s apiVersion = %q, want %q", kind, got, api)
		}
	}
	dep := m["Deployment"]
	if dep == nil {
		t.FailNow()
	}
	pod := get(dep, "spec", "template")
	podLabels := get(pod, "metadata", "labels").(map[string]any)
	matches := func(what string, sel any) {
		t.Helper()
		s, _ := sel.(map[string]any)
		if len(s) == 0 {
			t.Errorf("%s: empty selector", what)
		}
		for k, v := range s {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%v, which the pods do not carry", what, k, v)
			}
		}
	}
	matches("Deployment", get(dep, "spec", "selector", "matchLabels"))
	matches("Service", get(m["Service"], "spec", "selector"))
	matches("PodDisruptionBudget", get(m["PodDisruptionBudget"], "spec", "selector", "matchLabels"))
	matches("NetworkPolicy", get(m["NetworkPolicy"], "spec", "podSelector", "matchLabels"))
	// The ServiceMonitor selects the Service, by a port the Service names.
	for k, v := range get(m["ServiceMonitor"], "spec", "selector", "matchLabels").(map[string]any) {
		if get(m["Service"], "metadata", "labels", k) != v {
			t.Errorf("ServiceMonitor selects %s=%v, which the Service does not carry", k, v)
		}
	}

	replicas, _ := get(dep, "spec", "replicas").(int)
	minAvail, _ := get(m["PodDisruptionBudget"], "spec", "minAvailable").(int)
	if replicas < 3 || minAvail < 1 || minAvail >= replicas {
		t.Errorf("replicas %d, PDB minAvailable %d: want several replicas and a budget that allows a drain", replicas, minAvail)
	}

	c := get(pod, "spec", "containers", 0)
	ports := map[string]int{}
	for _, p := range get(c, "ports").([]any) {
		ports[str(p, "name")] = get(p, "containerPort").(int)
	}
	for _, probe := range []struct{ name, path string }{
		{"startupProbe", "/healthz"}, {"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"},
	} {
		if got := str(c, probe.name, "httpGet", "path"); got != probe.path {
			t.Errorf("%s path = %q, want %q", probe.name, got, probe.path)
		}
		if port := str(c, probe.name, "httpGet", "port"); ports[port] == 0 {
			t.Errorf("%s port %q is not a container port", probe.name, port)
		}
	}
	for _, p := range get(m["Service"], "spec", "ports").([]any) {
		if ports[str(p, "targetPort")] == 0 {
			t.Errorf("Service port %s targets %q, not a container port", str(p, "name"), str(p, "targetPort"))
		}
	}
	if ports[str(get(m["ServiceMonitor"], "spec", "endpoints", 0), "port")] == 0 {
		t.Error("the ServiceMonitor scrapes a port the pods do not have")
	}

	// Environment: listen addresses match the ports; secrets come from a
	// Secret, never from a literal in the manifest.
	env := map[string]any{}
	for _, e := range get(c, "env").([]any) {
		env[str(e, "name")] = e
	}
	for name, port := range map[string]string{"WARDEN_ADDR": "http", "WARDEN_METRICS_ADDR": "metrics"} {
		if v := str(env[name], "value"); !strings.HasSuffix(v, ":"+itoa(ports[port])) {
			t.Errorf("%s = %q does not listen on the %s port %d", name, v, port, ports[port])
		}
	}
	for _, name := range []string{"WARDEN_DB", "WARDEN_MASTER_KEY"} {
		if str(env[name], "valueFrom", "secretKeyRef", "name") == "" || get(env[name], "value") != nil {
			t.Errorf("%s must come from a Secret (valueFrom.secretKeyRef)", name)
		}
	}
	if key := str(env["WARDEN_AUDIT_KEY"], "value"); !strings.HasPrefix(key, "/etc/warden/audit/") {
		t.Errorf("WARDEN_AUDIT_KEY = %q, want the file mounted from the Secret", key)
	}

	// Unprivileged: non-root, no escalation, no capabilities, read-only root.
	psc, csc := get(pod, "spec", "securityContext"), get(c, "securityContext")
	if get(psc, "runAsNonRoot") != true || get(psc, "runAsUser") == 0 || str(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot, a non-zero uid and the RuntimeDefault seccomp profile", psc)
	}
	if get(csc, "allowPrivilegeEscalation") != false || get(csc, "readOnlyRootFilesystem") != true ||
		!slices.Equal(get(csc, "capabilities", "drop").([]any), []any{"ALL"}) {
		t.Errorf("container securityContext %v: want no escalation, a read-only root and every capability dropped", csc)
	}
	if img := str(c, "image"); strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
		t.Errorf("image %q: pin a version", img)
	}
	if get(pod, "spec", "terminationGracePeriodSeconds").(int) <= 30 {
		t.Error("terminationGracePeriodSeconds must exceed --grace=30s so the audit log is flushed")
	}
}

// TestManifestFlagsExist: the flags and environment variables the
// manifests and the Dockerfile pass are ones `warden serve` has.
func TestManifestFlagsExist(t *testing.T) {
	var out, help bytes.Buffer
	cli.Run(context.Background(), []string{"serve", "-h"}, strings.NewReader(""), &out, &help)
	text := help.String()
	if !strings.Contains(text, "-addr") {
		t.Fatalf("serve -h printed no flags: %q", text)
	}
	var args []string
	for _, a := range get(manifests(t)["Deployment"], "spec", "template", "spec", "containers", 0, "args").([]any) {
		args = append(args, a.(string))
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(--[a-z-]+)"`).FindAllStringSubmatch(string(df), -1) {
		args = append(args, m[1])
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(flag) + `\b`).MatchString(text) {
			t.Errorf("the manifests pass --%s, which warden serve does not have", flag)
		}
	}
	for _, name := range []string{"WARDEN_ADDR", "WARDEN_METRICS_ADDR", "WARDEN_DB", "WARDEN_AUDIT_KEY"} {
		if !strings.Contains(text, name) {
			t.Errorf("warden serve -h does not mention %s, which the Deployment sets", name)
		}
	}
}

// TestDockerfile: a static binary, on a distroless base, as a non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	stages := regexp.MustCompile(`(?m)^FROM (\S+)(?: AS (\S+))?`).FindAllStringSubmatch(df, -1)
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a runtime stage, got %v", stages)
	}
	last := stages[len(stages)-1]
	if !strings.HasPrefix(last[1], "gcr.io/distroless/static") || !strings.HasSuffix(last[1], ":nonroot") {
		t.Errorf("the default (last) stage is FROM %s; want distroless static, nonroot", last[1])
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the binary must be static: CGO_ENABLED=0")
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	if !regexp.MustCompile(`(?m)^USER 65532`).MatchString(final) {
		t.Error("the default stage must run as uid 65532 (nonroot)")
	}
	if !strings.Contains(final, `ENTRYPOINT ["/usr/local/bin/warden"]`) {
		t.Error("the default stage's entrypoint must be warden")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
