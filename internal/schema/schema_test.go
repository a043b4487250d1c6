package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// decode parses JSON the way warden decodes call arguments (UseNumber).
func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func compile(t testing.TB, s string) *Schema {
	t.Helper()
	m, ok := decode(t, s).(map[string]any)
	if !ok {
		t.Fatalf("schema %s is not an object", s)
	}
	sc, err := Compile(m)
	if err != nil {
		t.Fatalf("Compile(%s): %v", s, err)
	}
	return sc
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		value  string
		want   string // "" means valid
	}{
		// type
		{"type object ok", `{"type":"object"}`, `{}`, ""},
		{"type object bad", `{"type":"object"}`, `[]`, "args: must be an object, got an array"},
		{"type array", `{"type":"array"}`, `"x"`, "args: must be an array, got a string"},
		{"type string ok", `{"type":"string"}`, `"x"`, ""},
		{"type string bad", `{"type":"string"}`, `1`, "args: must be a string, got 1"},
		{"type number int", `{"type":"number"}`, `3`, ""},
		{"type number float", `{"type":"number"}`, `3.5`, ""},
		{"type number bad", `{"type":"number"}`, `true`, "args: must be a number, got a boolean"},
		{"type integer ok", `{"type":"integer"}`, `3`, ""},
		{"type integer 1.0", `{"type":"integer"}`, `1.0`, ""},
		{"type integer big", `{"type":"integer"}`, `123456789012345678901234567890`, ""},
		{"type integer bad", `{"type":"integer"}`, `1.5`, "args: must be an integer, got 1.5"},
		{"type boolean", `{"type":"boolean"}`, `null`, "args: must be a boolean, got null"},
		{"type null", `{"type":"null"}`, `null`, ""},
		{"type list ok", `{"type":["string","null"]}`, `null`, ""},
		{"type list bad", `{"type":["string","integer","null"]}`, `{}`, "args: must be a string, an integer or null, got an object"},

		// properties, required, additionalProperties
		{"properties", `{"properties":{"n":{"type":"integer"}}}`, `{"n":"x"}`, "args.n: must be an integer, got a string"},
		{"properties nested", `{"properties":{"repo":{"properties":{"name":{"type":"string"}}}}}`, `{"repo":{"name":5}}`, "args.repo.name: must be a string, got 5"},
		{"properties absent ok", `{"properties":{"n":{"type":"integer"}}}`, `{}`, ""},
		{"properties odd name", `{"properties":{"a b":{"type":"integer"}}}`, `{"a b":"x"}`, `args["a b"]: must be an integer, got a string`},
		{"properties first by name", `{"properties":{"b":{"type":"string"},"a":{"type":"string"}}}`, `{"a":1,"b":2}`, "args.a: must be a string, got 1"},
		{"required", `{"required":["repo"]}`, `{}`, "args.repo: required"},
		{"required order", `{"required":["b","a"]}`, `{}`, "args.b: required"},
		{"required ok", `{"required":["repo"]}`, `{"repo":null}`, ""},
		{"required before properties", `{"required":["z"],"properties":{"a":{"type":"string"}}}`, `{"a":1}`, "args.z: required"},
		{"additional false", `{"properties":{"a":{},"b":{}},"additionalProperties":false}`, `{"a":1,"c":2}`, "args.c: unknown property; expected one of: a, b"},
		{"additional false none", `{"additionalProperties":false}`, `{"x":1}`, "args.x: unknown property; none are allowed"},
		{"additional true", `{"properties":{"a":{}},"additionalProperties":true}`, `{"c":2}`, ""},
		{"additional schema", `{"properties":{"a":{}},"additionalProperties":{"type":"string"}}`, `{"a":1,"c":2}`, "args.c: must be a string, got 2"},
		{"additional schema ok", `{"additionalProperties":{"type":"string"}}`, `{"c":"x"}`, ""},
		{"false schema", `{"properties":{"a":false}}`, `{"a":1}`, "args.a: not allowed"},
		{"true schema", `{"properties":{"a":true}}`, `{"a":1}`, ""},

		// items
		{"items", `{"items":{"type":"string"}}`, `["a",2]`, "args[1]: must be a string, got 2"},
		{"items nested", `{"properties":{"tags":{"items":{"properties":{"k":{"type":"string"}}}}}}`, `{"tags":[{"k":"a"},{"k":1}]}`, "args.tags[1].k: must be a string, got 1"},
		{"items ok", `{"items":{"type":"string"}}`, `["a","b"]`, ""},

		// enum, const
		{"enum ok", `{"enum":["app","staging"]}`, `"app"`, ""},
		{"enum bad", `{"enum":["app","staging"]}`, `"prod"`, `args: must be one of "app", "staging"`},
		{"enum numbers", `{"enum":[1,2.5]}`, `1.0`, ""},
		{"enum object", `{"enum":[{"a":[1,"x"]}]}`, `{"a":[1,"x"]}`, ""},
		{"enum object bad", `{"enum":[{"a":[1,"x"]}]}`, `{"a":[1,"y"]}`, `args: must be one of {"a":[1,"x"]}`},
		{"enum long", `{"enum":[1,2,3,4,5,6,7,8,9,10,11,12]}`, `0`, "args: must be one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (2 more)"},
		{"enum null", `{"enum":[null]}`, `null`, ""},
		{"const ok", `{"const":"x"}`, `"x"`, ""},
		{"const bad", `{"const":"x"}`, `"y"`, `args: must be "x"`},
		{"const type", `{"const":1}`, `"1"`, "args: must be 1"},
		{"const false", `{"const":false}`, `false`, ""},

		// numeric bounds
		{"maximum ok", `{"maximum":10}`, `10`, ""},
		{"maximum bad", `{"properties":{"replicas":{"type":"integer","maximum":10}}}`, `{"replicas":11}`, "args.replicas: must be <= 10"},
		{"minimum ok", `{"minimum":1}`, `1`, ""},
		{"minimum bad", `{"minimum":1}`, `0.5`, "args: must be >= 1"},
		{"minimum float", `{"minimum":0.5}`, `0.25`, "args: must be >= 0.5"},
		{"exclusiveMinimum ok", `{"exclusiveMinimum":0}`, `0.001`, ""},
		{"exclusiveMinimum bad", `{"exclusiveMinimum":0}`, `0`, "args: must be > 0"},
		{"exclusiveMaximum ok", `{"exclusiveMaximum":10}`, `9.999`, ""},
		{"exclusiveMaximum bad", `{"exclusiveMaximum":10}`, `10`, "args: must be < 10"},
		{"bound exact int", `{"maximum":9007199254740992}`, `9007199254740993`, "args: must be <= 9007199254740992"},
		{"bound ignores strings", `{"maximum":1}`, `"100"`, ""},

		// strings
		{"minLength ok", `{"minLength":2}`, `"ab"`, ""},
		{"minLength bad", `{"minLength":2}`, `"a"`, "args: must be at least 2 characters long"},
		{"minLength runes", `{"minLength":2}`, `"é"`, "args: must be at least 2 characters long"},
		{"maxLength runes ok", `{"maxLength":2}`, `"éé"`, ""},
		{"maxLength bad", `{"maxLength":1}`, `"ab"`, "args: must be at most 1 character long"},
		{"pattern ok", `{"pattern":"^[a-z]+$"}`, `"abc"`, ""},
		{"pattern bad", `{"pattern":"^[a-z]+$"}`, `"ab1"`, `args: must match the pattern "^[a-z]+$"`},
		{"pattern unanchored", `{"pattern":"b"}`, `"abc"`, ""},
		{"string keywords ignore numbers", `{"maxLength":1,"pattern":"x"}`, `12345`, ""},

		// arrays
		{"minItems ok", `{"minItems":1}`, `[1]`, ""},
		{"minItems bad", `{"minItems":2}`, `[1]`, "args: must have at least 2 items"},
		{"maxItems bad", `{"maxItems":1}`, `[1,2]`, "args: must have at most 1 item"},

		// annotations
		{"annotations", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$comment":"c","title":"t","description":"d","default":{"a":1},"examples":[1,"x"]}`, `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compile(t, tt.schema).Validate(decode(t, tt.value))
			got := ""
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error is %T, want *ValidationError: %v", err, err)
				}
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate(%s) against %s\n got: %q\nwant: %q", tt.value, tt.schema, got, tt.want)
			}
		})
	}
}

// TestValidateGoValues: warden's normalized args (int64, float64) and values
// from YAML-built schemas (int64 bounds) compare like JSON numbers.
func TestValidateGoValues(t *testing.T) {
	sc := MustCompile(map[string]any{
		"type":     "object",
		"required": []any{"replicas"},
		"properties": map[string]any{
			"replicas":  map[string]any{"type": "integer", "minimum": int64(1), "maximum": int64(10)},
			"ratio":     map[string]any{"type": "number", "exclusiveMaximum": 1.0},
			"namespace": map[string]any{"enum": []any{"app", "staging"}},
			"count":     map[string]any{"const": int64(3)},
		},
	})
	tests := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"replicas": int64(3)}, ""},
		{map[string]any{"replicas": 3}, ""},
		{map[string]any{"replicas": float64(3)}, ""},
		{map[string]any{"replicas": uint8(3), "count": 3.0}, ""},
		{map[string]any{"replicas": int64(11)}, "args.replicas: must be <= 10"},
		{map[string]any{"replicas": float64(0)}, "args.replicas: must be >= 1"},
		{map[string]any{"replicas": 2.5}, "args.replicas: must be an integer, got 2.5"},
		{map[string]any{"replicas": int64(1), "ratio": float32(1)}, "args.ratio: must be < 1"},
		{map[string]any{"replicas": int64(1), "namespace": "prod"}, `args.namespace: must be one of "app", "staging"`},
		{map[string]any{"replicas": int64(1), "count": json.Number("4")}, "args.count: must be 3"},
		{map[string]any{"replicas": json.Number("1e400")}, "args.replicas: must be <= 10"},
		{map[string]any{"replicas": json.Number("zzz")}, "args.replicas: is not a valid number"},
		{map[string]any{"replicas": []string{"x"}}, "args.replicas: unsupported value of Go type []string"},
		{map[string]any{}, "args.replicas: required"},
	}
	for _, tt := range tests {
		err := sc.Validate(tt.args)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%v)\n got: %q\nwant: %q", tt.args, got, tt.want)
		}
	}
}

func TestValidationErrorFields(t *testing.T) {
	err := compile(t, `{"properties":{"repo":{"required":["name"]}}}`).Validate(decode(t, `{"repo":{}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError", err)
	}
	if ve.Path != "args.repo.name" || ve.Message != "required" {
		t.Errorf("got Path=%q Message=%q, want args.repo.name / required", ve.Path, ve.Message)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		schema  string
		pointer string
		want    string
	}{
		{`{"type":"strng"}`, "/type", `/type: unknown type "strng"; expected one of: object, array, string, number, integer, boolean, null`},
		{`{"type":"object","properties":{"b":{"type":"strng"}}}`, "/properties/b/type", `/properties/b/type: unknown type "strng"; expected one of: object, array, string, number, integer, boolean, null`},
		{`{"type":["string","nul"]}`, "/type/1", `/type/1: unknown type "nul"; expected one of: object, array, string, number, integer, boolean, null`},
		{`{"type":[]}`, "/type", "/type: type must not be an empty array"},
		{`{"type":["string","string"]}`, "/type/1", `/type/1: type "string" is listed twice`},
		{`{"type":[1]}`, "/type/0", "/type/0: type names must be strings, got a number"},
		{`{"type":5}`, "/type", "/type: type must be a string or an array of strings, got a number"},
		{`{"format":"email"}`, "/format", `/format: keyword "format" is not supported by warden's schema validator; remove it or express the constraint with the supported keywords`},
		{`{"properties":{"a/b":{"oneOf":[]}}}`, "/properties/a~1b/oneOf", `/properties/a~1b/oneOf: keyword "oneOf" is not supported by warden's schema validator; remove it or express the constraint with the supported keywords`},
		{`{"maxLenght":3}`, "/maxLenght", `/maxLenght: unknown keyword "maxLenght"`},
		{`{"properties":[]}`, "/properties", "/properties: properties must be an object mapping names to schemas, got an array"},
		{`{"properties":{"a":"string"}}`, "/properties/a", "/properties/a: a schema must be an object or a boolean, got a string"},
		{`{"required":"a"}`, "/required", "/required: required must be an array of strings, got a string"},
		{`{"required":["a",1]}`, "/required/1", "/required/1: required entries must be strings, got a number"},
		{`{"required":["a","a"]}`, "/required/1", `/required/1: required lists "a" twice`},
		{`{"required":["b"],"properties":{"a":{}},"additionalProperties":false}`, "/required/0", `/required/0: required property "b" is not in properties and additionalProperties is false, so no value can be valid`},
		{`{"additionalProperties":"no"}`, "/additionalProperties", "/additionalProperties: a schema must be an object or a boolean, got a string"},
		{`{"items":[{"type":"string"}]}`, "/items", "/items: items must be a schema; the array (tuple) form is not supported"},
		{`{"enum":[]}`, "/enum", "/enum: enum must be a non-empty array, got an array"},
		{`{"enum":"a"}`, "/enum", "/enum: enum must be a non-empty array, got a string"},
		{`{"minimum":"1"}`, "/minimum", "/minimum: minimum must be a finite number, got a string"},
		{`{"exclusiveMaximum":true}`, "/exclusiveMaximum", "/exclusiveMaximum: exclusiveMaximum must be a number; the draft-04 boolean form is not supported (write the limit itself: exclusiveMaximum: N)"},
		{`{"minLength":-1}`, "/minLength", "/minLength: minLength must be a non-negative integer, got -1"},
		{`{"maxLength":1.5}`, "/maxLength", "/maxLength: maxLength must be a non-negative integer, got 1.5"},
		{`{"minItems":"2"}`, "/minItems", `/minItems: minItems must be a non-negative integer, got "2"`},
		{`{"maxItems":true}`, "/maxItems", "/maxItems: maxItems must be a non-negative integer, got true"},
		{`{"pattern":"("}`, "/pattern", "/pattern: pattern \"(\" is not a valid RE2 regular expression: error parsing regexp: missing closing ): `(`"},
		{`{"pattern":"(?=x)"}`, "/pattern", "/pattern: pattern \"(?=x)\" is not a valid RE2 regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
		{`{"pattern":1}`, "/pattern", "/pattern: pattern must be a string, got a number"},
		{`{"description":1}`, "/description", "/description: description must be a string, got a number"},
		{`{"title":null}`, "/title", "/title: title must be a string, got null"},
		{`{"$schema":false}`, "/$schema", "/$schema: $schema must be a string, got a boolean"},
		{`{"examples":1}`, "/examples", "/examples: examples must be an array, got a number"},
		{`{"items":{"items":{"minimum":{}}}}`, "/items/items/minimum", "/items/items/minimum: minimum must be a finite number, got an object"},
	}
	for _, tt := range tests {
		m := decode(t, tt.schema).(map[string]any)
		_, err := Compile(m)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("Compile(%s) error = %v, want *CompileError", tt.schema, err)
			continue
		}
		if ce.Pointer != tt.pointer {
			t.Errorf("Compile(%s) pointer = %q, want %q", tt.schema, ce.Pointer, tt.pointer)
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Compile(%s)\n got: %s\nwant: %s", tt.schema, got, tt.want)
		}
	}
}

// TestCompileYAMLValues: schemas from the config loader carry int64 and
// float64 numbers.
func TestCompileYAMLValues(t *testing.T) {
	_, err := Compile(map[string]any{
		"type":       "object",
		"properties": map[string]any{"n": map[string]any{"type": "integer", "minimum": int64(0), "maximum": 2.5, "enum": []any{int64(1), 2.0}}, "s": map[string]any{"maxLength": int64(3), "minLength": 1.0}},
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if _, err := Compile(map[string]any{"const": []string{"x"}}); err == nil || err.Error() != "/const: unsupported value a []string" {
		t.Errorf("Compile with a Go slice const: got %v", err)
	}
}

// TestCompileDeterministic: with several problems, the same one is reported
// every time.
func TestCompileDeterministic(t *testing.T) {
	s := `{"zeta":1,"alpha":2,"properties":{"b":{"x":1},"a":{"y":1}}}`
	var first string
	for i := range 20 {
		_, err := Compile(decode(t, s).(map[string]any))
		if err == nil {
			t.Fatal("no error")
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("got %q, then %q", first, err.Error())
		}
	}
	if want := `/alpha: unknown keyword "alpha"`; first != want {
		t.Errorf("got %q, want %q", first, want)
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile of a bad schema did not panic")
		}
	}()
	MustCompile(map[string]any{"type": "nope"})
}

// FuzzValidate: no schema or argument value makes Compile or Validate panic,
// and every failure has the documented type.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"type":"object","required":["a"],"properties":{"a":{"type":"integer","maximum":10},"b":{"items":{"enum":[1,"x",null]}}},"additionalProperties":false}`), []byte(`{"a":11,"b":[1,"x",2]}`))
	f.Add([]byte(`{"pattern":"^a+$","minLength":1,"maxLength":3}`), []byte(`"aaaa"`))
	f.Add([]byte(`{"const":{"a":[1.0,2]}}`), []byte(`{"a":[1,2]}`))
	f.Add([]byte(`{"type":["number","null"],"exclusiveMinimum":0}`), []byte(`1e400`))
	f.Fuzz(func(t *testing.T, schemaJSON, value []byte) {
		dec := json.NewDecoder(bytes.NewReader(schemaJSON))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil || m == nil {
			return
		}
		sc, err := Compile(m)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile error is %T: %v", err, err)
			}
			return
		}
		dec = json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		if err := sc.Validate(v); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Path, "args") || ve.Message == "" {
				t.Fatalf("Validate error is %T %+v", err, err)
			}
		}
	})
}
