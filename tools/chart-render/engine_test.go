package main

// The Helm semantics the chart tests rely on, each pinned on a tiny chart.

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\nkubeVersion: \">=1.25.0-0\"\n",
	}
	for k, v := range files {
		base[k] = v
	}
	for name, text := range base {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func renderDemo(t *testing.T, files map[string]string, o options) (string, string, error) {
	t.Helper()
	o.chartDir = writeChart(t, files)
	if o.release == "" {
		o.release = "rel"
	}
	if o.namespace == "" {
		o.namespace = "ns"
	}
	if o.kubeVersion == "" {
		o.kubeVersion = "v1.32.0"
	}
	return run(&o, func(string) {})
}

func TestNullDeletesDefaultAndFilesGiveFloats(t *testing.T) {
	files := map[string]string{
		"values.yaml": "list: [a, b]\nmap: {k: v, keep: 1}\nnum: 1000000\n",
		"templates/cm.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\ndata:\n" +
			"  list: {{ kindOf .Values.list | quote }}\n  hasList: {{ hasKey .Values \"list\" | quote }}\n" +
			"  map: {{ toJson .Values.map | quote }}\n  num: {{ .Values.num | quote }}\n" +
			"  numInt: {{ .Values.num | int64 | quote }}\n  setNum: {{ .Values.setNum | quote }}\n",
	}
	dir := t.TempDir()
	user := filepath.Join(dir, "user.yaml")
	if err := os.WriteFile(user, []byte("list: null\nmap: {k: null}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := renderDemo(t, files, options{valueFiles: []string{user}, sets: []string{"setNum=1000000"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`list: "invalid"`, `hasList: "false"`, `map: "{\"keep\":1}"`,
		`num: "1e+06"`, `numInt: "1000000"`, `setNum: "1000000"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestSetTyping(t *testing.T) {
	m := map[string]interface{}{}
	for _, s := range []string{"a.b=true,a.c=null,d={x,2}", "e[1].f=007", `g\.h=1`} {
		if err := parseSet(s, m, false); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]interface{}{
		"a":   map[string]interface{}{"b": true, "c": nil},
		"d":   []interface{}{"x", int64(2)},
		"e":   []interface{}{nil, map[string]interface{}{"f": "007"}},
		"g.h": int64(1),
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %#v\nwant %#v", m, want)
	}
}

func TestFailRequiredIncludeTplFiles(t *testing.T) {
	files := map[string]string{
		"values.yaml":      "name: world\nmsg: \"hi {{ .Values.name }}\"\n",
		"templates/_h.tpl": `{{- define "demo.x" -}}x-{{ .Release.Name }}{{- end }}`,
		"templates/cm.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: {{ include \"demo.x\" . }}}\ndata:\n" +
			"  tpl: {{ tpl .Values.msg . | quote }}\n  file: {{ .Files.Get \"files/a.txt\" | trim | quote }}\n" +
			"  n: {{ len (.Files.Glob \"files/*.txt\") | quote }}\n  chart: {{ .Chart.AppVersion | quote }}\n" +
			"  caps: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n" +
			"{{- if .Values.boom }}{{ fail \"boom requested\" }}{{ end }}\n" +
			"{{- if .Values.need }}{{ required \"need.value is required\" .Values.need.value }}{{ end }}\n",
		"files/a.txt":         "A\n",
		"files/b.txt":         "B\n",
		"files/c.bak":         "C\n",
		".helmignore":         "*.bak\n",
		"templates/NOTES.txt": "notes for {{ .Release.Name }}",
	}
	out, notes, err := renderDemo(t, files, options{apiVersions: []string{"monitoring.coreos.com/v1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: x-rel", `tpl: "hi world"`, `file: "A"`, `n: "2"`, `chart: "4.5"`,
		`caps: "true"`, "# Source: demo/templates/cm.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if notes != "notes for rel" || strings.Contains(out, "notes for") {
		t.Errorf("NOTES.txt: got %q", notes)
	}
	_, _, err = renderDemo(t, files, options{sets: []string{"boom=true"}})
	if err == nil || err.Error() != "execution error at (demo/templates/cm.yaml:10:25): boom requested" {
		t.Errorf("fail: got %v", err)
	}
	_, _, err = renderDemo(t, files, options{sets: []string{"need.other=1"}})
	if err == nil || !strings.Contains(err.Error(), "): need.value is required") {
		t.Errorf("required: got %v", err)
	}
}

func TestSchemaReleaseNameAndKubeVersion(t *testing.T) {
	files := map[string]string{
		"values.yaml":        "port: 1\n",
		"values.schema.json": `{"type":"object","additionalProperties":false,"properties":{"port":{"type":"integer"}}}`,
		"templates/x.yaml":   "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n",
	}
	if _, _, err := renderDemo(t, files, options{sets: []string{"port=a"}}); err == nil ||
		!strings.Contains(err.Error(), "port: Invalid type. Expected: integer, given: string") {
		t.Errorf("schema: got %v", err)
	}
	if _, _, err := renderDemo(t, files, options{release: strings.Repeat("a", 54)}); err == nil {
		t.Error("a 54-character release name was accepted")
	}
	if _, _, err := renderDemo(t, files, options{release: strings.Repeat("a", 53)}); err != nil {
		t.Errorf("a 53-character release name: %v", err)
	}
	if _, _, err := renderDemo(t, files, options{kubeVersion: "v1.24.9"}); err == nil ||
		!strings.Contains(err.Error(), "incompatible with Kubernetes v1.24.9") {
		t.Errorf("kubeVersion: got %v", err)
	}
}

func TestManifestOrderAndParseErrors(t *testing.T) {
	files := map[string]string{
		"templates/a.yaml": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\n---\n" +
			"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s}\n",
		"templates/b.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\n",
	}
	out, _, err := renderDemo(t, files, options{})
	if err != nil {
		t.Fatal(err)
	}
	sa, ds, sm := strings.Index(out, "ServiceAccount"), strings.Index(out, "DaemonSet"), strings.Index(out, "ServiceMonitor")
	if !(sa < ds && ds < sm) {
		t.Errorf("not in install order:\n%s", out)
	}
	files["templates/c.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: indent\n"
	if _, _, err := renderDemo(t, files, options{}); err == nil || !strings.Contains(err.Error(), "YAML parse error on demo/templates/c.yaml") {
		t.Errorf("parse error: got %v", err)
	}
	files["templates/c.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: \"1\", a: \"2\"}\n"
	if _, _, err := renderDemo(t, files, options{strictYAML: true}); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("duplicate key: got %v", err)
	}
}
