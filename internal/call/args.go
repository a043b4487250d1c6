package call

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodeArgs parses a call's arguments: a JSON object (or empty input, which
// is no arguments). Integers become int64 and other numbers float64, so that
// policy conditions compare and add them the way people expect.
func DecodeArgs(data []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("args must be a JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("args must be a single JSON object; found more after it")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("args must be a JSON object, not %s", KindOf(v))
	}
	return NormalizeArgs(m)
}

// NormalizeArgs converts json.Number values (from a decoder with UseNumber)
// into int64 or float64, in place, and returns m.
func NormalizeArgs(m map[string]any) (map[string]any, error) {
	for k, v := range m {
		n, err := normalize(v)
		if err != nil {
			return nil, fmt.Errorf("args.%s: %w", k, err)
		}
		m[k] = n
	}
	return m, nil
}

// NormalizeNumbers converts the json.Numbers in a value decoded with
// UseNumber into int64 (integers that fit) or float64, in place.
func NormalizeNumbers(v any) (any, error) { return normalize(v) }

func normalize(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := x.Int64(); err == nil {
				return i, nil
			}
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", s)
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

// KindOf names the JSON kind of a decoded value for messages: "null",
// "a string", "a boolean", "a number", "an array", "an object".
func KindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, float32, int, int64, int32, int16, int8, uint64, uint, uint32, uint16, uint8:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
