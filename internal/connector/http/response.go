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
				if n, err := normalize(v); err == nil {
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

// normalize turns json.Numbers into int64 (integers that fit) or float64,
// the form warden uses for args.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}
