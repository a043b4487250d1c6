package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	nethttp "net/http"
	"strings"
	"unicode/utf8"

	"github.com/warden-dev/warden/internal/call"
)

// selectHeaders picks the response headers worth returning to an agent.
func selectHeaders(h nethttp.Header) map[string]string {
	out := map[string]string{}
	for k, vs := range h {
		name := ""
		switch {
		case k == "Content-Type", k == "Location", k == "Retry-After", k == "Link":
			name = k
		case k == "Etag":
			name = "ETag"
		case strings.HasPrefix(k, "X-Ratelimit-"):
			name = "X-RateLimit-" + k[len("X-Ratelimit-"):]
		case k == "Ratelimit" || strings.HasPrefix(k, "Ratelimit-"):
			name = "RateLimit" + k[len("Ratelimit"):]
		}
		if name != "" {
			out[name] = strings.Join(vs, ", ")
		}
	}
	return out
}

// decodeBody decodes a JSON response (application/json or any +json type)
// and returns anything else, or JSON that does not parse, as text.
func decodeBody(contentType string, body []byte, truncated bool) any {
	mt, _, _ := mime.ParseMediaType(contentType)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if isJSON && !truncated {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil {
			if _, err := dec.Token(); errors.Is(err, io.EOF) {
				if n, err := call.NormalizeNumbers(v); err == nil {
					return n
				}
			}
		}
	}
	if utf8.Valid(body) {
		return string(body)
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}
