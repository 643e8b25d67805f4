package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the config file; a missing file is an empty config. A file
// banger cannot use is a *FileError.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Defaults(), nil
	}
	if err != nil {
		return Config{}, &FileError{Path: path, Err: err}
	}
	return parse(path, data)
}

// Defaults is the configuration of an empty config file.
func Defaults() Config { return Config{}.withDefaults() }

// maxConfigSize bounds what is parsed: a config is a few hundred bytes.
const maxConfigSize = 1 << 20

// parse decodes and validates a config file's contents.
func parse(path string, data []byte) (Config, error) {
	var c Config
	if len(data) > maxConfigSize {
		return c, &FileError{Path: path, Err: fmt.Errorf("%d bytes: larger than %d", len(data), maxConfigSize)}
	}
	md, unknown, err := decodeInOrder(string(data), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// LastKey is the last key parsed, which is the culprit only
			// when it is on the failing line (`vmm = `), not when the
			// syntax error is further on (`[bogus`).
			msg := pe.Message
			if pe.LastKey != "" && keyLine(data, pe.LastKey) == pe.Position.Line {
				msg = pe.LastKey + ": " + msg
			}
			return c, &FileError{Path: path, Line: pe.Position.Line, Err: errors.New(msg)}
		}
		// Type mismatches come as text: `toml: line N (last key "K"): …`.
		if m := tomlTypeErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			if line == 0 {
				line = keyLine(data, m[2])
			}
			return c, &FileError{Path: path, Line: line, Err: errors.New(m[2] + ": " + m[3])}
		}
		return c, &FileError{Path: path, Err: err}
	}
	if und := md.Undecoded(); unknown != "" || len(und) > 0 {
		k := unknown
		if k == "" {
			k = und[0].String()
		}
		return c, &FileError{Path: path, Line: keyLine(data, k), Err: fmt.Errorf("unknown key %q", k)}
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		var ke *keyError
		line := 0
		if errors.As(err, &ke) {
			line = keyLine(data, ke.key)
		}
		return c, &FileError{Path: path, Line: line, Err: err}
	}
	return c, nil
}

// decodeInOrder decodes a config key by key in the order of the file, so
// that of several wrongly typed keys the first is the one reported, every
// time (toml.Decode walks a table in map order). unknown is the first
// key of the file that names no field of Config or of its tables (those
// inside [[file_sync]] entries are left to md.Undecoded).
func decodeInOrder(data string, c *Config) (md toml.MetaData, unknown string, err error) {
	var top map[string]toml.Primitive
	if md, err = toml.Decode(data, &top); err != nil {
		return md, "", err
	}
	rv := reflect.ValueOf(c).Elem()
	for _, k := range md.Keys() {
		var prim toml.Primitive
		var f reflect.Value
		switch len(k) {
		case 1:
			if f = fieldByTag(rv, k[0]); !f.IsValid() {
				unknown = cmp.Or(unknown, k.String())
				continue
			}
			if isTable(f) {
				if typ := md.Type(k...); typ != "Hash" {
					return md, "", fmt.Errorf("toml: (last key %q): want a table ([%s]), found %s", k.String(), k.String(), strings.ToLower(typ))
				}
				continue // its keys come one by one after it
			}
			prim = top[k[0]]
		case 2:
			parent := fieldByTag(rv, k[0])
			if !parent.IsValid() || !isTable(parent) {
				continue
			}
			if f = fieldByTag(parent, k[1]); !f.IsValid() {
				unknown = cmp.Or(unknown, k.String())
				continue
			}
			var sub map[string]toml.Primitive
			if err := md.PrimitiveDecode(top[k[0]], &sub); err != nil {
				return md, "", err
			}
			prim = sub[k[1]]
		default:
			continue
		}
		if err := md.PrimitiveDecode(prim, f.Addr().Interface()); err != nil {
			return md, "", err
		}
	}
	return md, unknown, nil
}

// fieldByTag is the field of struct v whose toml tag is name, else one
// whose tag matches it ignoring case (as toml.Decode matches).
func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	fold := -1
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag == name {
			return v.Field(i)
		}
		if fold < 0 && strings.EqualFold(tag, name) {
			fold = i
		}
	}
	if fold >= 0 {
		return v.Field(fold)
	}
	return reflect.Value{}
}

// isTable: a struct decoded field by field ([network], [vm_defaults], …),
// not a value type with its own decoding (Duration).
func isTable(f reflect.Value) bool {
	if f.Kind() != reflect.Struct {
		return false
	}
	_, text := f.Addr().Interface().(interface{ UnmarshalText([]byte) error })
	_, tml := f.Addr().Interface().(toml.Unmarshaler)
	return !text && !tml
}

var tomlTypeErr = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// FileError is a config file banger cannot use: which file, where in it
// (Line 0: not known) and what is wrong.
type FileError struct {
	Path string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config %s, line %d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("config %s: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// keyError is a Validate failure of one key ("network.subnet"), so that
// Load can say on which line it is.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

func badKey(key, format string, a ...any) error {
	return &keyError{key, fmt.Errorf(format, a...)}
}

// keyLine is the line on which key ("vmm", "network.subnet") is set, or
// the line of its table ("file_sync"), or 0.
func keyLine(data []byte, key string) int {
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(strings.SplitN(line, "#", 2)[0], "[] \t")
			if table == key {
				return i + 1
			}
			continue
		}
		lhs, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name := strings.Trim(strings.TrimSpace(lhs), `"'`)
		if table != "" {
			name = table + "." + name
		}
		if name == key {
			return i + 1
		}
	}
	return 0
}
