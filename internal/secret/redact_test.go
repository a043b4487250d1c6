package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

const testSecret = "s3cr3t/V@lue+with=odd&chars\"<>"

func newTestRedactor(t testing.TB) *Redactor {
	t.Helper()
	r := NewRedactor()
	r.Add("token", NewValue(testSecret))
	return r
}

func TestRedactForms(t *testing.T) {
	r := newTestRedactor(t)
	v := testSecret
	jsonForm, _ := json.Marshal(v)
	tests := []struct {
		name string
		form string
	}{
		{"raw", v},
		{"base64 std", base64.StdEncoding.EncodeToString([]byte(v))},
		{"base64 std raw", base64.RawStdEncoding.EncodeToString([]byte(v))},
		{"base64 url", base64.URLEncoding.EncodeToString([]byte(v))},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString([]byte(v))},
		{"hex", hex.EncodeToString([]byte(v))},
		{"HEX", strings.ToUpper(hex.EncodeToString([]byte(v)))},
		{"query escaped", url.QueryEscape(v)},
		{"path escaped", url.PathEscape(v)},
		{"json escaped", string(jsonForm[1 : len(jsonForm)-1])},
		{"go quoted", fmt.Sprintf("%q", v)[1 : len(fmt.Sprintf("%q", v))-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "before " + tt.form + " after"
			got := r.Redact(in)
			if strings.Contains(got, tt.form) {
				t.Fatalf("Redact(%q) = %q: the %s form is still there", in, got, tt.name)
			}
			if want := "before [REDACTED:token] after"; got != want {
				t.Errorf("Redact(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

// TestRedactLowerCase: a secret lower-cased on its way (the egress proxy
// lower-cases host names) is still redacted.
func TestRedactLowerCase(t *testing.T) {
	r := NewRedactor()
	r.Add("token", NewValue("S3cretT0kenValue"))
	for _, in := range []string{
		"CONNECT S3cretT0kenValue.example:443",
		"CONNECT s3crett0kenvalue.example:443",
	} {
		if got, want := r.Redact(in), "CONNECT [REDACTED:token].example:443"; got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactBasicAuth: a value inside a longer base64 string (HTTP Basic
// credentials) is found at every byte alignment.
func TestRedactBasicAuth(t *testing.T) {
	r := NewRedactor()
	r.Add("password", NewValue("correct-horse-battery"))
	for _, user := range []string{"a", "ab", "abc", "alice"} {
		enc := base64.StdEncoding.EncodeToString([]byte(user + ":correct-horse-battery"))
		got := r.Redact("Authorization: Basic " + enc)
		if !strings.Contains(got, "[REDACTED:password]") {
			t.Errorf("user %q: Redact(Basic %s) = %q, want the password's part redacted", user, enc, got)
		}
		dec, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(got, "Authorization: Basic "))
		if bytes.Contains(dec, []byte("correct-horse-battery")) {
			t.Errorf("user %q: what is left still decodes to the password", user)
		}
	}
}

func TestRedactShapes(t *testing.T) {
	r := NewRedactor()
	tests := []struct {
		in, want string
	}{
		{"token ghp_" + strings.Repeat("a", 36) + " end", "token [REDACTED:github-token] end"},
		{"github_pat_11ABCDEFG0" + strings.Repeat("x", 40), "[REDACTED:github-token]"},
		{"key=AKIAIOSFODNN7EXAMPLE;", "key=[REDACTED:aws-access-key];"},
		{"ASIAIOSFODNN7EXAMPLE", "[REDACTED:aws-access-key]"},
		{`"xoxb-1234567890-abcdefghij"`, `"[REDACTED:slack-token]"`},
		{"sk-ant-api03-" + strings.Repeat("Z", 30), "[REDACTED:anthropic-key]"},
		{"Bearer sk-proj-" + strings.Repeat("9", 30), "Bearer [REDACTED:api-key]"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2lnbmF0dXJl x", "jwt [REDACTED:jwt] x"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\nrest", "[REDACTED:private-key]\nrest"},
		{`{"k":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"}`, `{"k":"[REDACTED:private-key]"}`},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", "[REDACTED:private-key]"},
		// Not tokens: too short, or inside a word.
		{"ghp_short", "ghp_short"},
		{"task-" + strings.Repeat("a", 30), "task-" + strings.Repeat("a", 30)},
		{"AKIA1234", "AKIA1234"},
		{"-----BEGIN PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----"},
	}
	for _, tt := range tests {
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactLeftmostLongestAndShort(t *testing.T) {
	r := NewRedactor()
	r.Add("short", NewValue("abc")) // under MinValueLen: ignored
	r.Add("a", NewValue("password"))
	r.Add("b", NewValue("password123"))
	if got, want := r.Redact("x password123 password abc"), "x [REDACTED:b] [REDACTED:a] abc"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := r.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
}

func TestRedactJSON(t *testing.T) {
	r := NewRedactor()
	r.Add("token", NewValue(`tok"en\value`))
	doc, _ := json.Marshal(map[string]any{"echo": `tok"en\value`, "n": 1})
	got := r.RedactJSON(doc)
	if !json.Valid(got) {
		t.Fatalf("RedactJSON(%s) = %s: not JSON", doc, got)
	}
	if want := `{"echo":"[REDACTED:token]","n":1}`; string(got) != want {
		t.Errorf("RedactJSON(%s) = %s, want %s", doc, got, want)
	}
	// A raw value straddling the structure still goes, and the result is
	// still JSON.
	r.Add("odd", NewValue(`a","b`))
	got = r.RedactJSON([]byte(`["a","b"]`))
	if !json.Valid(got) || bytes.Contains(got, []byte(`a","b`)) {
		t.Errorf("RedactJSON = %s, want valid JSON without the value", got)
	}
}

func TestWriterAcrossChunks(t *testing.T) {
	r := newTestRedactor(t)
	forms := Forms(testSecret)
	for _, form := range forms[:11] {
		// Long enough that the writer emits before Close, with the form at
		// varied distances from where it cuts.
		pad := strings.Repeat("x", 2*NewRedactor().m.Load().maxLen)
		in := "head " + pad + form + " middle " + pad[:777] + form + " tail " + pad
		for _, chunk := range []int{1, 13, 511, 4096, 16199, 40000} {
			var out bytes.Buffer
			w := r.Writer(&out)
			for i := 0; i < len(in); i += chunk {
				if _, err := w.Write([]byte(in[i:min(len(in), i+chunk)])); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			want := r.Redact(in)
			if got != want {
				t.Fatalf("form %q, chunks of %d: got %q, want %q", form, chunk, got, want)
			}
			if strings.Contains(got, form) {
				t.Fatalf("form %q survived chunks of %d", form, chunk)
			}
		}
	}
}

func TestWriterShapeAcrossChunks(t *testing.T) {
	r := NewRedactor()
	tok := "ghp_" + strings.Repeat("Q", 40)
	in := strings.Repeat("-", 50) + tok + strings.Repeat(".", 50)
	var out bytes.Buffer
	w := r.Writer(&out)
	for i := 0; i < len(in); i += 3 {
		_, _ = w.Write([]byte(in[i:min(len(in), i+3)]))
	}
	_ = w.Close()
	if strings.Contains(out.String(), "ghp_") || !strings.Contains(out.String(), "[REDACTED:github-token]") {
		t.Errorf("got %q", out.String())
	}
}

func TestValueNeverPrints(t *testing.T) {
	v := NewValue("hunter2hunter2")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
	j, _ := json.Marshal(map[string]any{"v": v})
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x %d", v, v, v, v, v, v, v),
		v.String(), v.GoString(), logs.String(), string(j),
	}
	for _, s := range outs {
		if strings.Contains(s, "hunter2") {
			t.Errorf("a Value printed itself: %q", s)
		}
	}
	if v.Reveal() != "hunter2hunter2" {
		t.Errorf("Reveal() = %q", v.Reveal())
	}
}

func TestLogHandler(t *testing.T) {
	r := newTestRedactor(t)
	var buf bytes.Buffer
	log := slog.New(r.LogHandler(slog.NewTextHandler(&buf, nil)))
	log.With("pre", testSecret).Info("msg "+testSecret, "err", fmt.Errorf("wrapped %s", testSecret),
		slog.Group("g", "k", hex.EncodeToString([]byte(testSecret))), "n", 3, "any", []string{testSecret})
	out := buf.String()
	for _, f := range Forms(testSecret) {
		if strings.Contains(out, f) {
			t.Errorf("log line holds a form %q: %s", f, out)
		}
	}
	if !strings.Contains(out, "n=3") || strings.Count(out, "[REDACTED:token]") < 5 {
		t.Errorf("log line = %s", out)
	}
}
