package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var errEOF = io.EOF

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("is not a duration")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 90s, 15m, 24h)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// checkKeys walks the document against the Go type so that unknown keys and
// wrongly typed values are reported with their key path.
func checkKeys(root *yaml.Node, into any) error {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	return walk(n, reflect.TypeOf(into).Elem(), "")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeOf(Duration(0))
var secretType = reflect.TypeOf(Secret(""))

func walk(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	where := path
	if where == "" {
		where = "(top level)"
	}
	switch {
	case t == durationType:
		var d Duration
		if err := d.UnmarshalYAML(n); err != nil {
			return fmt.Errorf("%s: %s", where, err.Error())
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: expected a mapping, found %s", where, describeFor(n, t))
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("%s: unknown key (line %d; known keys: %s)", join(path, k.Value), k.Line, strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return fmt.Errorf("%s: key appears twice (line %d)", join(path, k.Value), k.Line)
			}
			seen[k.Value] = true
			if err := walk(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: expected a list, found %s", where, describeFor(n, t))
		}
		for i, e := range n.Content {
			if err := walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: expected a mapping, found %s", where, describeFor(n, t))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: expected a single value, found %s", where, describe(n))
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		kind := t.Kind().String()
		switch t.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32:
			kind = "a whole number"
		case reflect.Float64, reflect.Float32:
			kind = "a number"
		case reflect.Bool:
			kind = "true or false"
		case reflect.String:
			kind = "a string"
		}
		shown := strconv.Quote(n.Value)
		if t == secretType {
			shown = "the value"
		}
		return fmt.Errorf("%s: %s is not %s", where, shown, kind)
	}
	return nil
}

// describeFor describes a misplaced node without quoting it when the place
// expected holds a secret: a mistyped list of tokens must not print them.
func describeFor(n *yaml.Node, t reflect.Type) string {
	if n.Kind == yaml.ScalarNode && holdsSecret(t, 0) {
		return "a single value"
	}
	return describe(n)
}

func holdsSecret(t reflect.Type, depth int) bool {
	if t == secretType {
		return true
	}
	if depth > 6 {
		return false
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer:
		return holdsSecret(t.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if holdsSecret(t.Field(i).Type, depth+1) {
				return true
			}
		}
	}
	return false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func decodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("invalid value: %s", strings.Join(te.Errors, "; "))
	}
	return err
}
