package config

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	a := []File{{Name: "a.yaml", Data: []byte("kind: agent\nname: bot\nmodel: x\n---\nkind: policy\nname: p\nrules: []\n")}}
	b := []File{
		{Name: "a.yaml", Data: []byte("kind: agent\nname: bot\nmodel: y\n")},
		{Name: "b.yaml", Data: []byte("# new\nkind: connector\nname: up\n")},
	}
	got := Diff(a, b)
	want := `changed agent bot (a.yaml)
  @@ -1,3 +1,3 @@
    kind: agent
    name: bot
  - model: x
  + model: y

added connector up (b.yaml)
+ # new
+ kind: connector
+ name: up

removed policy p (a.yaml)
- kind: policy
- name: p
- rules: []

0 documents unchanged
`
	if got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", got, want)
	}
	if d := Diff(a, a); d != "" {
		t.Errorf("Diff of a config with itself: %q, want empty", d)
	}
}

func TestLineDiffHunks(t *testing.T) {
	var a, b []string
	for i := range 30 {
		a = append(a, "line "+string(rune('a'+i%26)))
	}
	b = append(b, a...)
	b[2] = "changed near the top"
	b[25] = "changed near the end"
	got := unified(a, b, 3)
	if n := strings.Count(got, "@@ -"); n != 2 {
		t.Fatalf("%d hunks, want 2 (changes 23 lines apart):\n%s", n, got)
	}
	if !strings.Contains(got, "@@ -1,6 +1,6 @@") || !strings.Contains(got, "@@ -23,7 +23,7 @@") {
		t.Errorf("hunk headers:\n%s", got)
	}
}
