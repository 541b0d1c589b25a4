package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// The config file. Every gsd flag can also come from the environment and
// from a TOML file; precedence, highest first:
//
//	1. the command line (--http-addr 0.0.0.0:7070)
//	2. the environment: GSD_ and the flag's name in capitals with - as _
//	   (GSD_HTTP_ADDR=0.0.0.0:7070)
//	3. the file named by --config or $GSD_CONFIG: a top-level key per flag,
//	   named like the flag (http-addr = "0.0.0.0:7070"; lists as arrays,
//	   durations as strings: session-expiry = "10m")
//	4. the flag's default
//
// TOML rather than YAML: a value has one type and no implicit conversions
// (YAML 1.1 reads no as false and 1e3 as a number), comments are allowed,
// and the parser (BurntSushi/toml) was already in the module graph. A key
// that names no flag, or a table, is an error: a typo must not be ignored.
// `gsd --print-config` prints the effective settings in the same format,
// so its output is a valid config file; secrets are commented out and
// redacted.

// envPrefix starts the environment variable of every flag.
const envPrefix = "GSD_"

// configOptions are the flags about the config itself.
type configOptions struct {
	file  string
	print bool
}

func (c *configOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&c.file, "config", "", "TOML config file: a key per flag, named like the flag (default: $GSD_CONFIG); flags and GSD_* variables override it")
	f.BoolVar(&c.print, "print-config", false, "print the effective config (flags > environment > file > defaults) as TOML, secrets redacted, and exit")
}

// notConfigurable are flags that only the command line sets.
var notConfigurable = map[string]bool{"config": true, "print-config": true, "help": true}

// secretFlags hold secrets (a DSN may carry a password): --print-config
// redacts them.
var secretFlags = map[string]bool{"pg-sink-dsn": true}

// envName is the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyConfig sets every flag of fs that the command line did not set from
// the environment (lookup) or, failing that, from the TOML file (path; ""
// for none).
func applyConfig(fs *pflag.FlagSet, path string, lookup func(string) (string, bool)) error {
	return applyConfigKeys(fs, path, lookup, true)
}

// applyConfigKeys is applyConfig; with strict false, file keys that name
// none of fs's flags are skipped (a subcommand reads the daemon's file).
func applyConfigKeys(fs *pflag.FlagSet, path string, lookup func(string) (string, bool), strict bool) error {
	file, err := readConfigFile(fs, path, strict)
	if err != nil {
		return err
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || notConfigurable[f.Name] {
			return
		}
		if v, ok := lookup(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", envName(f.Name), err))
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		if err := setFromFile(fs, f, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", path, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// readConfigFile decodes the file and checks that every key names a flag.
func readConfigFile(fs *pflag.FlagSet, path string, strict bool) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var file map[string]any
	if _, err := toml.Decode(string(b), &file); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	for _, k := range sortedConfigKeys(file) {
		switch f := fs.Lookup(k); {
		case (f == nil || notConfigurable[k]) && !strict:
			delete(file, k)
		case f == nil || notConfigurable[k]:
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q (keys are gsd's flag names, see gsd --help)", path, k))
		default:
			if _, table := file[k].(map[string]any); table {
				errs = append(errs, fmt.Errorf("config file %s: %q is a table; keys are top level, named like the flags", path, k))
			}
		}
	}
	return file, errors.Join(errs...)
}

func sortedConfigKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// setFromFile sets flag f from a decoded TOML value: an array replaces a
// list flag's value, a scalar is set as the command line would.
func setFromFile(fs *pflag.FlagSet, f *pflag.Flag, v any) error {
	if arr, ok := v.([]any); ok {
		items := make([]string, len(arr))
		for i, it := range arr {
			s, err := scalarString(it)
			if err != nil {
				return err
			}
			items[i] = s
		}
		sv, ok := f.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("an array for a flag that takes one %s", f.Value.Type())
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	s, err := scalarString(v)
	if err != nil {
		return err
	}
	return fs.Set(f.Name, s)
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T): use a string, number, boolean or array of them", v, v)
}

// printConfig writes every configurable flag's effective value as TOML,
// sorted by name; secrets that are set are commented out and redacted.
func printConfig(w io.Writer, fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	vals := make(map[string]any)
	var redacted []string
	fs.VisitAll(func(f *pflag.Flag) {
		if notConfigurable[f.Name] {
			return
		}
		if secretFlags[f.Name] {
			if f.Value.String() != "" {
				redacted = append(redacted, f.Name)
			} else {
				vals[f.Name] = ""
			}
			return
		}
		vals[f.Name] = tomlValue(f)
	})
	var buf bytes.Buffer
	buf.WriteString("# gsd effective config (flags > GSD_* environment > config file > defaults)\n")
	if err := toml.NewEncoder(&buf).Encode(vals); err != nil {
		return err
	}
	for _, name := range redacted {
		fmt.Fprintf(&buf, "# %s = \"<redacted>\"\n", name)
	}
	if s, ok := lookup(EnvClusterSecret); ok && strings.TrimSpace(s) != "" {
		fmt.Fprintf(&buf, "# cluster secret: from $%s (<redacted>)\n", EnvClusterSecret)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// tomlValue is a flag's value typed for TOML: lists as arrays, booleans
// and integers as themselves, anything else (durations, addresses) as the
// string the flag parses.
func tomlValue(f *pflag.Flag) any {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		s := sv.GetSlice()
		if s == nil {
			s = []string{}
		}
		return s
	}
	s := f.Value.String()
	switch f.Value.Type() {
	case "bool":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "float64", "float32":
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			return x
		}
	}
	return s
}
