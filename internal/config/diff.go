package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A Document is one YAML document of a config as written: its kind and
// name (tenant/name where a tenant is set) and its text, comments included.
type Document struct {
	Key  string // "kind name", e.g. "policy safety" or "agent acme/bot"
	File string
	Text string
}

var docSeparator = regexp.MustCompile(`^---(\s.*)?$`)

// Documents splits config files into their documents, keyed by kind and
// name. A document without a kind or name gets its file and position as a
// name, so nothing is dropped; a repeated key gets a #N suffix.
func Documents(files []File) []Document {
	var docs []Document
	seen := map[string]int{}
	for _, f := range files {
		var cur []string
		n := 0
		flush := func() {
			text := strings.TrimSpace(strings.Join(cur, "\n"))
			cur = cur[:0]
			if text == "" {
				return
			}
			n++
			var head struct{ Kind, Name, Tenant string }
			_ = yaml.Unmarshal([]byte(text), &head) // a broken document still shows, under its position
			key := head.Kind + " " + head.Name
			if head.Tenant != "" {
				key = head.Kind + " " + head.Tenant + "/" + head.Name
			}
			if head.Kind == "" || (head.Name == "" && head.Kind != "approvals") {
				key = fmt.Sprintf("document %s#%d", f.Name, n)
			}
			if head.Kind == "approvals" && head.Name == "" {
				key = "approvals"
			}
			if seen[key]++; seen[key] > 1 {
				key = fmt.Sprintf("%s#%d", key, seen[key])
			}
			docs = append(docs, Document{Key: key, File: f.Name, Text: text + "\n"})
		}
		for _, line := range strings.Split(strings.ReplaceAll(string(f.Data), "\r\n", "\n"), "\n") {
			if docSeparator.MatchString(line) {
				flush()
				continue
			}
			cur = append(cur, line)
		}
		flush()
	}
	return docs
}

// Diff describes how config b differs from config a, document by
// document: documents added and removed in full, changed ones as a line
// diff with three lines of context. It returns "" when every document is
// the same text.
func Diff(a, b []File) string {
	da, db := Documents(a), Documents(b)
	byKey := func(ds []Document) map[string]Document {
		m := make(map[string]Document, len(ds))
		for _, d := range ds {
			m[d.Key] = d
		}
		return m
	}
	ma, mb := byKey(da), byKey(db)
	var keys []string
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var sb strings.Builder
	same := 0
	for _, k := range keys {
		x, inA := ma[k]
		y, inB := mb[k]
		switch {
		case !inA:
			fmt.Fprintf(&sb, "added %s (%s)\n", k, y.File)
			for _, l := range lines(y.Text) {
				sb.WriteString("+ " + l + "\n")
			}
		case !inB:
			fmt.Fprintf(&sb, "removed %s (%s)\n", k, x.File)
			for _, l := range lines(x.Text) {
				sb.WriteString("- " + l + "\n")
			}
		case x.Text == y.Text:
			same++
			continue
		default:
			where := y.File
			if x.File != y.File {
				where = x.File + " → " + y.File
			}
			fmt.Fprintf(&sb, "changed %s (%s)\n", k, where)
			sb.WriteString(unified(lines(x.Text), lines(y.Text), 3))
		}
		sb.WriteString("\n")
	}
	if sb.Len() == 0 {
		return ""
	}
	noun := "documents"
	if same == 1 {
		noun = "document"
	}
	fmt.Fprintf(&sb, "%d %s unchanged\n", same, noun)
	return sb.String()
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// edit is one line of a line diff: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	text string
}

// lineDiff is the longest-common-subsequence diff of two line lists. Config
// documents are small; past a size where the table would be large it falls
// back to "all removed, all added", which is still correct.
func lineDiff(a, b []string) []edit {
	// Common prefix and suffix first: most changes touch a few lines.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > 4_000_000 {
		for _, l := range ma {
			out = append(out, edit{'-', l})
		}
		for _, l := range mb {
			out = append(out, edit{'+', l})
		}
	} else {
		// lcs[i][j]: length of the LCS of ma[i:] and mb[j:].
		w := len(mb) + 1
		lcs := make([]int, (len(ma)+1)*w)
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(ma) && j < len(mb) {
			switch {
			case ma[i] == mb[j]:
				out = append(out, edit{' ', ma[i]})
				i++
				j++
			case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
				out = append(out, edit{'-', ma[i]})
				i++
			default:
				out = append(out, edit{'+', mb[j]})
				j++
			}
		}
		for ; i < len(ma); i++ {
			out = append(out, edit{'-', ma[i]})
		}
		for ; j < len(mb); j++ {
			out = append(out, edit{'+', mb[j]})
		}
	}
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// unified formats a line diff as hunks with ctx lines of context, each
// headed "@@ -start,count +start,count @@" like diff -u.
func unified(a, b []string, ctx int) string {
	es := lineDiff(a, b)
	var sb strings.Builder
	for i := 0; i < len(es); {
		if es[i].op == ' ' {
			i++
			continue
		}
		// A hunk: from ctx lines before this change to ctx lines after the
		// last change that is within 2*ctx kept lines of the previous.
		start := max(0, i-ctx)
		end := i
		for k := i; k < len(es); k++ {
			if es[k].op != ' ' {
				end = k + 1
				continue
			}
			if k-end >= 2*ctx {
				break
			}
		}
		end = min(len(es), end+ctx)
		la, lb := 1, 1 // line numbers at start
		for _, e := range es[:start] {
			if e.op != '+' {
				la++
			}
			if e.op != '-' {
				lb++
			}
		}
		na, nb := 0, 0
		for _, e := range es[start:end] {
			if e.op != '+' {
				na++
			}
			if e.op != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "  @@ -%d,%d +%d,%d @@\n", la, na, lb, nb)
		for _, e := range es[start:end] {
			sb.WriteString("  " + string(e.op) + " " + e.text + "\n")
		}
		i = end
	}
	return sb.String()
}
