package main

// Values: how Helm 3 builds .Values for `helm template` (pkg/cli/values,
// pkg/strvals, pkg/chartutil/coalesce.go), reproduced.
//
//   - values files (-f) are read with sigs.k8s.io/yaml, so every number is a
//     float64, as in Helm;
//   - files merge in order: maps deep-merged, anything else replaced;
//   - --set / --set-string assignments follow (strvals: true/false/null,
//     int64 for integers, {a,b} lists, a[0] indexes, \. in keys);
//   - the result is coalesced over the chart's values.yaml: a user null
//     deletes the key (Helm's documented way to drop a default), a user
//     table merges into a default table, anything else replaces.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Values is chartutil.Values: the named map type of .Values. Templates see
// its methods, and sprig functions that type-assert map[string]interface{}
// (dig) fail on it exactly as they do under Helm.
type Values map[string]interface{}

// YAML renders the values as YAML (chartutil.Values.YAML).
func (v Values) YAML() (string, error) {
	b, err := yaml.Marshal(v)
	return string(b), err
}

// AsMap returns the plain map (chartutil.Values.AsMap).
func (v Values) AsMap() map[string]interface{} {
	if len(v) == 0 {
		return map[string]interface{}{}
	}
	return v
}

// Table returns the sub-table at a dotted path (chartutil.Values.Table).
func (v Values) Table(name string) (Values, error) {
	table := v
	for _, n := range strings.Split(name, ".") {
		next, ok := table[n]
		if !ok {
			return Values{}, fmt.Errorf("no table named %q", name)
		}
		m, ok := next.(map[string]interface{})
		if !ok {
			if vv, ok2 := next.(Values); ok2 {
				m = vv
			} else {
				return Values{}, fmt.Errorf("no table named %q", name)
			}
		}
		table = m
	}
	return table, nil
}

// PathValue returns the value at a dotted path (chartutil.Values.PathValue).
func (v Values) PathValue(path string) (interface{}, error) {
	if path == "" {
		return nil, errors.New("YAML path cannot be empty")
	}
	parts := strings.Split(path, ".")
	if len(parts) == 1 {
		if val, ok := v[path]; ok {
			if _, isMap := val.(map[string]interface{}); !isMap {
				return val, nil
			}
		}
		return nil, fmt.Errorf("no value found at %q", path)
	}
	t, err := v.Table(strings.Join(parts[:len(parts)-1], "."))
	if err != nil {
		return nil, fmt.Errorf("no value found at %q", path)
	}
	return t.PathValue(parts[len(parts)-1])
}

// readValuesFile reads a values file as Helm does (sigs.k8s.io/yaml).
func readValuesFile(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseValues(data, path)
}

func parseValues(data []byte, name string) (map[string]interface{}, error) {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", name, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// mergeMaps is pkg/cli/values mergeMaps: b over a, maps deep-merged.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bm, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bm, vm)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// coalesce is chartutil.CoalesceValues for a chart without subcharts: the
// user's values over the chart's defaults. Both are deep-copied first.
func coalesce(defaults, user map[string]interface{}, warn func(string)) map[string]interface{} {
	v := deepCopy(user).(map[string]interface{})
	for key, val := range deepCopy(defaults).(map[string]interface{}) {
		value, ok := v[key]
		if !ok {
			v[key] = val
			continue
		}
		if value == nil {
			delete(v, key)
		} else if dest, ok := value.(map[string]interface{}); ok {
			src, ok := val.(map[string]interface{})
			if !ok {
				if val != nil {
					warn(fmt.Sprintf("warning: skipped value for %s: Not a table.", key))
				}
			} else {
				coalesceTables(dest, src, key, warn)
			}
		}
	}
	return v
}

// coalesceTables is chartutil.coalesceTablesFullKey (merge=false): dst (the
// user's) wins; a nil in dst deletes the key.
func coalesceTables(dst, src map[string]interface{}, prefix string, warn func(string)) {
	for key, val := range src {
		fullkey := prefix + "." + key
		dv, ok := dst[key]
		switch {
		case ok && dv == nil:
			delete(dst, key)
		case !ok:
			dst[key] = val
		case isTable(val):
			if isTable(dv) {
				coalesceTables(dv.(map[string]interface{}), val.(map[string]interface{}), fullkey, warn)
			} else {
				warn(fmt.Sprintf("warning: cannot overwrite table with non table for %s (%v)", fullkey, val))
			}
		case isTable(dv) && val != nil:
			warn(fmt.Sprintf("warning: destination for %s is a table. Ignoring non-table value (%v)", fullkey, val))
		}
	}
}

func isTable(v interface{}) bool {
	_, ok := v.(map[string]interface{})
	return ok
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case Values:
		out := make(map[string]interface{}, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

// --- --set (pkg/strvals) ---------------------------------------------------

// parseSet applies one --set (asString=false) or --set-string argument,
// "a.b=1,c[0].d={x,y}", to dst.
func parseSet(arg string, dst map[string]interface{}, asString bool) error {
	for _, assignment := range splitUnescaped(arg, ',', true) {
		eq := indexUnescaped(assignment, '=')
		if eq < 0 {
			return fmt.Errorf("key %q has no value", assignment)
		}
		key, raw := assignment[:eq], assignment[eq+1:]
		var val interface{}
		if !asString && strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			items := []interface{}{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					items = append(items, typedVal(unescape(item), false))
				}
			}
			val = items
		} else {
			val = typedVal(unescape(raw), asString)
		}
		if err := setPath(dst, parseKey(key), val); err != nil {
			return fmt.Errorf("failed parsing --set data: %s: %w", key, err)
		}
	}
	return nil
}

// typedVal is strvals.typedVal.
func typedVal(val string, asString bool) interface{} {
	if asString {
		return val
	}
	switch {
	case strings.EqualFold(val, "true"):
		return true
	case strings.EqualFold(val, "false"):
		return false
	case strings.EqualFold(val, "null"):
		return nil
	case val == "0":
		return int64(0)
	}
	if len(val) != 0 && val[0] != '0' {
		if iv, err := strconv.ParseInt(val, 10, 64); err == nil {
			return iv
		}
	}
	return val
}

type keyPart struct {
	name  string
	index int // -1: a map key
}

// parseKey splits "a.b\.c[1].d" into a, b.c, [1], d.
func parseKey(key string) []keyPart {
	var parts []keyPart
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, keyPart{name: cur.String(), index: -1})
			cur.Reset()
		}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '\\' && i+1 < len(key):
			i++
			cur.WriteByte(key[i])
		case c == '.':
			flush()
		case c == '[':
			flush()
			end := strings.IndexByte(key[i:], ']')
			if end < 0 {
				cur.WriteByte(c)
				continue
			}
			n, err := strconv.Atoi(key[i+1 : i+end])
			if err != nil || n < 0 {
				n = -2 // invalid, reported by setPath
			}
			parts = append(parts, keyPart{index: n})
			i += end
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return parts
}

func setPath(dst map[string]interface{}, parts []keyPart, val interface{}) error {
	if len(parts) == 0 || parts[0].index != -1 {
		return errors.New("key must start with a name")
	}
	var container interface{} = dst
	_, err := setIn(container, parts, val)
	return err
}

// setIn sets val at parts inside node and returns the (possibly new) node.
func setIn(node interface{}, parts []keyPart, val interface{}) (interface{}, error) {
	p := parts[0]
	last := len(parts) == 1
	if p.index == -2 {
		return nil, errors.New("invalid list index")
	}
	if p.index == -1 {
		m, ok := node.(map[string]interface{})
		if !ok || m == nil {
			m = map[string]interface{}{}
		}
		if last {
			m[p.name] = val
			return m, nil
		}
		child, err := setIn(m[p.name], parts[1:], val)
		if err != nil {
			return nil, err
		}
		m[p.name] = child
		return m, nil
	}
	list, _ := node.([]interface{})
	for len(list) <= p.index {
		list = append(list, nil)
	}
	if last {
		list[p.index] = val
		return list, nil
	}
	child, err := setIn(list[p.index], parts[1:], val)
	if err != nil {
		return nil, err
	}
	list[p.index] = child
	return list, nil
}

// splitUnescaped splits on sep outside backslash escapes (and, with braces,
// outside {...}).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case braces && c == '{':
			depth++
		case braces && c == '}' && depth > 0:
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
