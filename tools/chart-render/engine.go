package main

// The template engine: Helm 3's pkg/engine (render, include, tpl, required,
// fail, the function map, error reporting) and pkg/chart/loader (which
// files are templates and which are .Files), reproduced.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
	sprig "github.com/Masterminds/sprig"
	"github.com/gobwas/glob"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// Metadata is chart.Metadata (Chart.yaml); templates use its Go field names.
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []interface{}     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

// Maintainer is chart.Maintainer.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// chartMeta is what .Chart is in Helm 3: the metadata plus IsRoot.
type chartMeta struct {
	Metadata
	IsRoot bool
}

// Chart is a loaded chart directory.
type Chart struct {
	Meta      Metadata
	Defaults  map[string]interface{}
	Schema    []byte
	Templates map[string][]byte // "name/templates/x.yaml" -> text
	Files     Files             // every other file, by chart-relative path
}

var chartNameRe = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// loadChart reads a chart directory the way loader.LoadDir does.
func loadChart(dir string) (*Chart, error) {
	ign, err := loadHelmIgnore(dir)
	if err != nil {
		return nil, err
	}
	c := &Chart{Templates: map[string][]byte{}, Files: Files{}, Defaults: map[string]interface{}{}}
	var chartYAML []byte
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ign.ignored(rel, info.IsDir()) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case rel == "Chart.yaml":
			chartYAML = data
		case rel == "values.yaml":
			c.Defaults, err = parseValues(data, "values.yaml")
			if err != nil {
				return err
			}
		case rel == "values.schema.json":
			c.Schema = data
		case rel == "Chart.lock", rel == "requirements.yaml", rel == "requirements.lock":
		case strings.HasPrefix(rel, "templates/"):
			c.Templates[rel] = data
		case strings.HasPrefix(rel, "charts/"):
			return fmt.Errorf("%s: subcharts are not supported by this renderer", rel)
		default:
			c.Files[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if chartYAML == nil {
		return nil, fmt.Errorf("%s: Chart.yaml file is missing", dir)
	}
	if err := yaml.Unmarshal(chartYAML, &c.Meta); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
	}
	if err := validateMetadata(&c.Meta); err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	named := map[string][]byte{}
	for rel, data := range c.Templates {
		named[c.Meta.Name+"/"+rel] = data
	}
	c.Templates = named
	return c, nil
}

// validateMetadata is the part of chart.Metadata.Validate that a chart
// author can get wrong.
func validateMetadata(md *Metadata) error {
	switch {
	case md.APIVersion == "":
		return fmt.Errorf("chart.metadata.apiVersion is required")
	case md.APIVersion != "v2" && md.APIVersion != "v1":
		return fmt.Errorf("chart.metadata.apiVersion %q is not valid", md.APIVersion)
	case md.Name == "":
		return fmt.Errorf("chart.metadata.name is required")
	case !chartNameRe.MatchString(md.Name):
		return fmt.Errorf("chart.metadata.name %q is invalid", md.Name)
	case md.Version == "":
		return fmt.Errorf("chart.metadata.version is required")
	case md.Type != "" && md.Type != "application" && md.Type != "library":
		return fmt.Errorf("chart.metadata.type must be application or library")
	}
	if _, err := newSemver(md.Version); err != nil {
		return fmt.Errorf("chart.metadata.version %q is invalid", md.Version)
	}
	if md.Type == "library" {
		return fmt.Errorf("library charts are not installable")
	}
	return nil
}

// --- .helmignore ------------------------------------------------------------

type ignoreRule struct {
	pattern string
	negate  bool
	dirOnly bool
	hasPath bool
}

type helmIgnore []ignoreRule

// loadHelmIgnore reads .helmignore (pkg/ignore: gitignore-like globs; a rule
// without a slash matches base names) plus Helm's default rule, which
// ignores hidden files in templates/.
func loadHelmIgnore(dir string) (helmIgnore, error) {
	rules := helmIgnore{{pattern: "templates/.?*", hasPath: true}}
	data, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	if os.IsNotExist(err) {
		return rules, nil
	} else if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.negate = true
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly = true
			line = strings.TrimSuffix(line, "/")
		}
		line = strings.TrimPrefix(line, "/")
		r.hasPath = strings.Contains(line, "/")
		if _, err := path.Match(line, "x"); err != nil {
			return nil, fmt.Errorf(".helmignore: bad pattern %q", line)
		}
		r.pattern = line
		rules = append(rules, r)
	}
	return rules, nil
}

func (h helmIgnore) ignored(rel string, isDir bool) bool {
	if rel == ".helmignore" {
		return false
	}
	out := false
	for _, r := range h {
		if r.dirOnly && !isDir {
			continue
		}
		target := path.Base(rel)
		if r.hasPath {
			target = rel
		}
		if ok, _ := path.Match(r.pattern, target); ok {
			out = !r.negate
		}
	}
	return out
}

// --- .Files ------------------------------------------------------------------

// Files is engine.files: the chart's non-template files.
type Files map[string][]byte

// GetBytes returns a file's bytes, or nil.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Get returns a file's text, or "".
func (f Files) Get(name string) string { return string(f[name]) }

// Glob returns the files matching a gobwas glob with '/' as separator.
func (f Files) Glob(pattern string) Files {
	g, err := glob.Compile(pattern, '/')
	if err != nil {
		g, _ = glob.Compile("**")
	}
	out := Files{}
	for name, data := range f {
		if g.Match(name) {
			out[name] = data
		}
	}
	return out
}

// AsConfig renders the files as ConfigMap data: base names as keys.
func (f Files) AsConfig() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

// AsSecrets renders the files as Secret data: base names, base64 values.
func (f Files) AsSecrets() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return toYAML(m)
}

// Lines returns a file's lines.
func (f Files) Lines(name string) []string {
	if f == nil || f[name] == nil {
		return []string{}
	}
	s := string(f[name])
	if s != "" && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return strings.Split(s, "\n")
}

// --- .Capabilities -------------------------------------------------------------

// Capabilities is chartutil.Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion BuildInfo
}

// KubeVersion is chartutil.KubeVersion.
type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

// String is the version, e.g. v1.32.0.
func (kv *KubeVersion) String() string { return kv.Version }

// GitVersion is the version too (deprecated in Helm).
func (kv *KubeVersion) GitVersion() string { return kv.Version }

// VersionSet is chartutil.VersionSet.
type VersionSet []string

// Has tells whether an API version ("apps/v1") or kind ("apps/v1/DaemonSet") is known.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// BuildInfo is helm's version.BuildInfo.
type BuildInfo struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

// builtinAPIVersions are the group versions (and their kinds this chart
// family uses) that a Kubernetes cluster of the default version serves,
// as Helm's DefaultVersionSet lists them without a cluster.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
	"scheduling.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
	"authentication.k8s.io/v1", "authorization.k8s.io/v1", "certificates.k8s.io/v1",
	"events.k8s.io/v1", "node.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1",
	"v1/ConfigMap", "v1/Secret", "v1/Service", "v1/ServiceAccount", "v1/Pod", "v1/Namespace",
	"apps/v1/DaemonSet", "apps/v1/Deployment", "apps/v1/StatefulSet",
	"policy/v1/PodDisruptionBudget", "scheduling.k8s.io/v1/PriorityClass",
	"rbac.authorization.k8s.io/v1/ClusterRole", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
	"rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding",
	"networking.k8s.io/v1/NetworkPolicy",
}

// --- functions -------------------------------------------------------------------

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func toYAMLPretty(v interface{}) string {
	var data bytes.Buffer
	enc := yamlv3.NewEncoder(&data)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(data.String(), "\n")
}

// fromMap and fromArray are Helm's fromYaml/fromJson(Array): a decode
// error becomes the "Error" key, or the only element.
func fromMap(unmarshal func([]byte, interface{}) error) func(string) map[string]interface{} {
	return func(str string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := unmarshal([]byte(str), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
}

func fromArray(unmarshal func([]byte, interface{}) error) func(string) []interface{} {
	return func(str string) []interface{} {
		a := []interface{}{}
		if err := unmarshal([]byte(str), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
}

func yamlUnmarshal(data []byte, v interface{}) error { return yaml.Unmarshal(data, v) }

var (
	fromYAML      = fromMap(yamlUnmarshal)
	fromYAMLArray = fromArray(yamlUnmarshal)
	fromJSON      = fromMap(json.Unmarshal)
	fromJSONArray = fromArray(json.Unmarshal)
)

func toTOML(v interface{}) string {
	b := bytes.NewBuffer(nil)
	if err := toml.NewEncoder(b).Encode(v); err != nil {
		return err.Error()
	}
	return b.String()
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

const (
	warnStartDelim   = "HELM_ERR_START"
	warnEndDelim     = "HELM_ERR_END"
	recursionMaxNums = 1000
)

var warnRegex = regexp.MustCompile(warnStartDelim + `((?s).*)` + warnEndDelim)

func warnWrap(warn string) string { return warnStartDelim + warn + warnEndDelim }

// funcMap is engine.funcMap: sprig's text functions without env and
// expandenv, plus Helm's.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml":        toTOML,
		"toYaml":        toYAML,
		"toYamlPretty":  toYAMLPretty,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"include":       func(string, interface{}) string { return "not implemented" },
		"tpl":           func(string, interface{}) interface{} { return "not implemented" },
		"required":      func(string, interface{}) (interface{}, error) { return "not implemented", nil },
		// No cluster: lookup finds nothing, as under `helm template`.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		// DNS lookups are off by default in Helm.
		"getHostByName": func(string) string { return "" },
	}
	for k, v := range extra {
		f[k] = v
	}
	f["fail"] = func(msg string) (string, error) { return "", fmt.Errorf("%s", warnWrap(msg)) }
	f["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, fmt.Errorf("%s", warnWrap(warn))
		}
		if s, ok := val.(string); ok && s == "" {
			return val, fmt.Errorf("%s", warnWrap(warn))
		}
		return val, nil
	}
	return f
}

func includeFun(t *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
}

func tplFun(parent *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(tpl string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		t.Option("missingkey=zero")
		t.Funcs(template.FuncMap{
			"include": includeFun(t, includedNames),
			"tpl":     tplFun(t, includedNames),
		})
		t, err = t.New(parent.Name()).Parse(tpl)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", tpl, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", tpl, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

// --- render --------------------------------------------------------------------

// sortTemplates orders names as engine.sortTemplates: deeper paths first,
// then reverse lexical (so a later define of the same name wins as in Helm).
func sortTemplates(names []string) []string {
	out := append([]string(nil), names...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca == cb {
			return a > b
		}
		return ca > cb
	})
	return out
}

// render executes every non-partial template with top as its data and
// returns the output by template name.
func render(c *Chart, top map[string]interface{}) (rendered map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	includedNames := map[string]int{}
	fm := funcMap()
	fm["include"] = includeFun(t, includedNames)
	fm["tpl"] = tplFun(t, includedNames)
	t.Funcs(fm)

	names := make([]string, 0, len(c.Templates))
	for n := range c.Templates {
		names = append(names, n)
	}
	keys := sortTemplates(names)
	for _, name := range keys {
		if _, err := t.New(name).Parse(string(c.Templates[name])); err != nil {
			return nil, cleanupParseError(name, err)
		}
	}
	rendered = map[string]string{}
	for _, name := range keys {
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		vals := map[string]interface{}{}
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = map[string]interface{}{"Name": name, "BasePath": c.Meta.Name + "/templates"}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, vals); err != nil {
			return nil, cleanupExecError(name, err)
		}
		rendered[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return rendered, nil
}

func cleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	location := tokens[1]
	errMsg := tokens[len(tokens)-1]
	return fmt.Errorf("parse error at (%s): %s", location, errMsg)
}

func cleanupExecError(filename string, err error) error {
	if _, isExecError := err.(template.ExecError); !isExecError {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	location := tokens[1]
	parts := warnRegex.FindStringSubmatch(tokens[2])
	if len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", location, parts[1])
	}
	return err
}
