package firecracker

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A minimal Swagger 2.0 reader and JSON-schema checker: just what the
// definitions the driver uses need (types, required, properties, closed
// objects, enums, bounds, $ref).

type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 string             `yaml:"type"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	AdditionalProperties yaml.Node          `yaml:"additionalProperties"` // a schema or a boolean
	Enum                 []any              `yaml:"enum"`
	Minimum              *float64           `yaml:"minimum"`
	Maximum              *float64           `yaml:"maximum"`
	Items                *schema            `yaml:"items"`
}

type operation struct {
	Parameters []struct {
		In       string  `yaml:"in"`
		Required bool    `yaml:"required"`
		Schema   *schema `yaml:"schema"`
	} `yaml:"parameters"`
}

type apiSpec struct {
	Info        struct{ Version string } `yaml:"info"`
	Paths       map[string]map[string]operation
	Definitions map[string]*schema
}

// loadSpec reads firecracker-api.yaml from BANGER_FC_SPEC or from the
// shared reference directory beside the repository.
func loadSpec(t *testing.T) *apiSpec {
	t.Helper()
	path := os.Getenv("BANGER_FC_SPEC")
	if path == "" {
		path = filepath.Join("..", "..", "..", "..", "shared", "reference", "firecracker-api.yaml")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the contract test needs Firecracker's OpenAPI spec: %v (set BANGER_FC_SPEC to its path; CI has it at shared/reference/firecracker-api.yaml)", err)
	}
	var s apiSpec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(s.Definitions) == 0 || len(s.Paths) == 0 {
		t.Fatalf("%s has no paths or definitions", path)
	}
	return &s
}

// bodySchema finds the body schema of method on a concrete path such as
// /drives/base, matching {param} segments of the spec's templates.
func (s *apiSpec) bodySchema(method, path string) (*schema, error) {
	for tmpl, ops := range s.Paths {
		if !pathMatches(tmpl, path) {
			continue
		}
		op, ok := ops[strings.ToLower(method)]
		if !ok {
			return nil, fmt.Errorf("spec has no %s %s", method, tmpl)
		}
		for _, p := range op.Parameters {
			if p.In == "body" {
				return p.Schema, nil
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("spec has no path matching %s", path)
}

func pathMatches(tmpl, path string) bool {
	a, b := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(strings.HasPrefix(a[i], "{") && strings.HasSuffix(a[i], "}")) {
			return false
		}
	}
	return true
}

func (s *apiSpec) resolve(sc *schema) (*schema, error) {
	for sc != nil && sc.Ref != "" {
		name, ok := strings.CutPrefix(sc.Ref, "#/definitions/")
		if !ok || s.Definitions[name] == nil {
			return nil, fmt.Errorf("unresolvable $ref %q", sc.Ref)
		}
		sc = s.Definitions[name]
	}
	return sc, nil
}

// validate checks a decoded JSON value (map[string]any, float64, ...)
// against sc. Objects are closed unless additionalProperties says
// otherwise, because Firecracker denies unknown fields.
func (s *apiSpec) validate(v any, sc *schema, at string) []string {
	sc, err := s.resolve(sc)
	if err != nil {
		return []string{at + ": " + err.Error()}
	}
	if sc == nil {
		return nil
	}
	var errs []string
	if len(sc.Enum) > 0 && !slices.ContainsFunc(sc.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		errs = append(errs, fmt.Sprintf("%s: %v not in enum %v", at, v, sc.Enum))
	}
	switch sc.Type {
	case "object", "":
		obj, ok := v.(map[string]any)
		if !ok {
			if sc.Type == "" {
				return errs
			}
			return append(errs, fmt.Sprintf("%s: want object, got %T", at, v))
		}
		return append(errs, s.validateObject(obj, sc, at)...)
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: want string, got %T", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want boolean, got %T", at, v))
		}
	case "integer", "number":
		errs = append(errs, checkNumber(v, sc, at)...)
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want array, got %T", at, v))
		}
		for i, e := range arr {
			errs = append(errs, s.validate(e, sc.Items, fmt.Sprintf("%s[%d]", at, i))...)
		}
	default:
		errs = append(errs, fmt.Sprintf("%s: schema type %q not handled by this checker", at, sc.Type))
	}
	return errs
}

func (s *apiSpec) validateObject(obj map[string]any, sc *schema, at string) []string {
	var errs []string
	for _, r := range sc.Required {
		if _, ok := obj[r]; !ok {
			errs = append(errs, fmt.Sprintf("%s: missing required %q", at, r))
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch p := sc.Properties[k]; {
		case p != nil:
			errs = append(errs, s.validate(obj[k], p, at+"."+k)...)
		default:
			extra, open := additional(sc)
			if !open {
				errs = append(errs, fmt.Sprintf("%s: unknown property %q", at, k))
			} else if extra != nil {
				errs = append(errs, s.validate(obj[k], extra, at+"."+k)...)
			}
		}
	}
	return errs
}

// additional interprets additionalProperties: absent means closed (the
// spec does not say so, but Firecracker denies unknown fields), true means
// anything, a schema constrains the values.
func additional(sc *schema) (*schema, bool) {
	n := sc.AdditionalProperties
	switch n.Kind {
	case 0:
		return nil, false
	case yaml.ScalarNode:
		var b bool
		return nil, n.Decode(&b) == nil && b
	}
	var extra schema
	if n.Decode(&extra) != nil {
		return nil, false
	}
	return &extra, true
}

func checkNumber(v any, sc *schema, at string) []string {
	f, ok := v.(float64)
	if !ok {
		return []string{fmt.Sprintf("%s: want %s, got %T", at, sc.Type, v)}
	}
	var errs []string
	if sc.Type == "integer" && f != math.Trunc(f) {
		errs = append(errs, fmt.Sprintf("%s: %v is not an integer", at, f))
	}
	if sc.Minimum != nil && f < *sc.Minimum {
		errs = append(errs, fmt.Sprintf("%s: %v below minimum %v", at, f, *sc.Minimum))
	}
	if sc.Maximum != nil && f > *sc.Maximum {
		errs = append(errs, fmt.Sprintf("%s: %v above maximum %v", at, f, *sc.Maximum))
	}
	return errs
}
