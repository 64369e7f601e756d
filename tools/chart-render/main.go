// Command chart-render stands in for `helm template` where no helm binary
// can be installed (CI here). It renders a Helm 3 chart directory the way
// `helm template RELEASE CHART` does, built only from Debian's packages of
// the libraries Helm itself uses: Go's text/template, sprig v3
// (golang-github-masterminds-sprig-dev), sigs.k8s.io/yaml, Masterminds
// semver, gobwas glob, gojsonschema and BurntSushi toml. It follows Helm 3's
// pkg/engine, pkg/chartutil, pkg/strvals and pkg/releaseutil:
//
//   - values: values.yaml, then -f files merged in order, then --set and
//     --set-string; coalesced with Helm's rule that a user null deletes the
//     key; numbers from YAML are float64, from --set int64 (as in Helm);
//     validated against values.schema.json with gojsonschema (Helm <= 3.17);
//   - objects: .Values (chartutil.Values, with its methods), .Release,
//     .Chart (Chart.yaml metadata, Go field names, IsRoot), .Capabilities
//     (--kube-version, --api-versions added to a built-in set), .Files
//     (Get, GetBytes, Glob, Lines, AsConfig, AsSecrets; .helmignore applied),
//     .Template;
//   - functions: sprig's text functions without env/expandenv, toYaml,
//     toYamlPretty, fromYaml, fromYamlArray, toJson, fromJson,
//     fromJsonArray, toToml, include (with Helm's recursion limit), tpl,
//     required, fail (with Helm's error wrapping), lookup (empty, as without a
//     cluster), getHostByName (empty); missingkey=zero and "<no value>" removed;
//   - checks: release name (53 characters, DNS-1123), Chart.yaml metadata,
//     the chart's kubeVersion constraint;
//   - output: partials (_*) not rendered, NOTES.txt rendered apart
//     (--notes FILE), documents split and parsed as Helm's SortManifests does
//     ("YAML parse error on ..."), sorted in Helm's install order, each with
//     its "# Source:" header.
//
// Not covered (not used by the charts it renders here): subcharts and
// dependencies, library charts, hooks as a separate list (they are printed
// with the rest), --set-file, --set-json, --show-only, post-renderers,
// CRDs in crds/, a live cluster for lookup or the API versions, and
// `helm lint`'s extra rules.
//
// --strict-yaml additionally decodes every document with yaml.v3 and
// fails on duplicate keys, which Helm and the API server silently resolve.
//
// Usage:
//
//	chart-render [flags] RELEASE CHART_DIR
//	  -n, --namespace NS       release namespace (default "default")
//	  -f, --values FILE        values file (repeatable)
//	      --set K=V            (repeatable)
//	      --set-string K=V     (repeatable)
//	      --kube-version V     default v1.32.0
//	  -a, --api-versions V     extra API version for .Capabilities (repeatable)
//	      --skip-schema-validation
//	      --notes FILE         write the rendered NOTES.txt there
//	      --strict-yaml
//
// Exit 0 with the manifests on stdout; 1 with "Error: ..." on stderr.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver"
	"github.com/xeipuuv/gojsonschema"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

type options struct {
	release, chartDir, namespace, kubeVersion, notesFile string
	valueFiles, sets, setStrings, apiVersions            []string
	skipSchema, strictYAML                               bool
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\nusage: chart-render [flags] RELEASE CHART_DIR\n", err)
		os.Exit(2)
	}
	out, notes, err := run(opts, func(w string) { fmt.Fprintln(os.Stderr, w) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	if opts.notesFile != "" {
		if err := os.WriteFile(opts.notesFile, []byte(notes), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			os.Exit(1)
		}
	}
	os.Stdout.WriteString(out)
}

func parseArgs(args []string) (*options, error) {
	o := &options{namespace: "default", kubeVersion: "v1.32.0"}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := a, "", false
		if strings.HasPrefix(a, "--") {
			if eq := strings.IndexByte(a, '='); eq > 0 {
				name, val, hasVal = a[:eq], a[eq+1:], true
			}
		}
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "-n", "--namespace":
			o.namespace, err = next()
		case "-f", "--values":
			v, err = next()
			o.valueFiles = append(o.valueFiles, v)
		case "--set":
			v, err = next()
			o.sets = append(o.sets, v)
		case "--set-string":
			v, err = next()
			o.setStrings = append(o.setStrings, v)
		case "--kube-version":
			o.kubeVersion, err = next()
		case "-a", "--api-versions":
			v, err = next()
			o.apiVersions = append(o.apiVersions, v)
		case "--notes":
			o.notesFile, err = next()
		case "--skip-schema-validation":
			o.skipSchema = true
		case "--strict-yaml":
			o.strictYAML = true
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				return nil, fmt.Errorf("unknown flag: %s", a)
			}
			positional = append(positional, a)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(positional) != 2 {
		return nil, fmt.Errorf("want RELEASE and CHART_DIR, got %d arguments", len(positional))
	}
	o.release, o.chartDir = positional[0], positional[1]
	return o, nil
}

var validReleaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

const maxReleaseNameLen = 53

func newSemver(v string) (*semver.Version, error) { return semver.NewVersion(v) }

// run renders and returns the manifests and NOTES.txt.
func run(o *options, warn func(string)) (string, string, error) {
	if o.release == "" || len(o.release) > maxReleaseNameLen || !validReleaseName.MatchString(o.release) {
		return "", "", fmt.Errorf("invalid release name, must match regex %s and the length must not be longer than %d",
			validReleaseName.String(), maxReleaseNameLen)
	}
	c, err := loadChart(o.chartDir)
	if err != nil {
		return "", "", err
	}
	caps, err := capabilities(o)
	if err != nil {
		return "", "", err
	}
	if c.Meta.KubeVersion != "" && !compatibleRange(c.Meta.KubeVersion, caps.KubeVersion.Version) {
		return "", "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
			c.Meta.KubeVersion, caps.KubeVersion.Version)
	}
	user := map[string]interface{}{}
	for _, f := range o.valueFiles {
		m, err := readValuesFile(f)
		if err != nil {
			return "", "", err
		}
		user = mergeMaps(user, m)
	}
	for _, s := range o.sets {
		if err := parseSet(s, user, false); err != nil {
			return "", "", err
		}
	}
	for _, s := range o.setStrings {
		if err := parseSet(s, user, true); err != nil {
			return "", "", err
		}
	}
	vals := Values(coalesce(c.Defaults, user, warn))
	if c.Schema != nil && !o.skipSchema {
		if err := validateSchema(vals, c.Schema); err != nil {
			return "", "", fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s",
				c.Meta.Name, err)
		}
	}
	top := map[string]interface{}{
		"Values": vals,
		"Release": map[string]interface{}{
			"Name": o.release, "Namespace": o.namespace, "IsUpgrade": false, "IsInstall": true,
			"Revision": 1, "Service": "Helm",
		},
		"Chart":        chartMeta{Metadata: c.Meta, IsRoot: true},
		"Files":        c.Files,
		"Capabilities": caps,
		"Subcharts":    map[string]interface{}{},
	}
	rendered, err := render(c, top)
	if err != nil {
		return "", "", err
	}
	notes := ""
	for name, text := range rendered {
		if strings.HasSuffix(name, "/templates/NOTES.txt") {
			notes = text
			delete(rendered, name)
		}
	}
	manifests, err := sortManifests(rendered, o.strictYAML)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.name, m.content)
	}
	return b.String(), notes, nil
}

func capabilities(o *options) (*Capabilities, error) {
	v, err := semver.NewVersion(o.kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version %q: %w", o.kubeVersion, err)
	}
	versions := append(VersionSet{}, builtinAPIVersions...)
	versions = append(versions, o.apiVersions...)
	return &Capabilities{
		KubeVersion: KubeVersion{Version: "v" + v.String(), Major: strconv.FormatUint(v.Major(), 10),
			Minor: strconv.FormatUint(v.Minor(), 10)},
		APIVersions: versions,
		HelmVersion: BuildInfo{Version: "v3.17.0", GoVersion: "chart-render"},
	}, nil
}

func compatibleRange(constraint, ver string) bool {
	sv, err := semver.NewVersion(ver)
	if err != nil {
		return false
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false
	}
	return c.Check(sv)
}

// validateSchema is chartutil.ValidateAgainstSingleSchema (gojsonschema).
func validateSchema(vals Values, schema []byte) (reterr error) {
	defer func() {
		if r := recover(); r != nil {
			reterr = fmt.Errorf("unable to validate schema: %v", r)
		}
	}()
	data, err := yaml.Marshal(vals)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	if bytes.Equal(js, []byte("null")) {
		js = []byte("{}")
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(js))
	if err != nil {
		return err
	}
	if !result.Valid() {
		var sb strings.Builder
		for _, desc := range result.Errors() {
			sb.WriteString(fmt.Sprintf("- %s\n", desc))
		}
		return fmt.Errorf("%s", sb.String())
	}
	return nil
}

// --- releaseutil ---------------------------------------------------------------

type manifest struct {
	name, content, kind string
}

// simpleHead is releaseutil.SimpleHead.
type simpleHead struct {
	Version  string `json:"apiVersion"`
	Kind     string `json:"kind,omitempty"`
	Metadata *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

var manifestSep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

// splitManifests is releaseutil.SplitManifests, in document order.
func splitManifests(bigFile string) []string {
	var out []string
	for _, d := range manifestSep.Split(strings.TrimSpace(bigFile), -1) {
		if d == "" {
			continue
		}
		out = append(out, strings.TrimSpace(d))
	}
	return out
}

// installOrder is releaseutil.InstallOrder.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet",
	"Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass",
	"Ingress", "APIService",
}

// sortManifests is releaseutil.SortManifests + sortManifestsByKind.
func sortManifests(files map[string]string, strictYAML bool) ([]manifest, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []manifest
	for _, p := range paths {
		content := files[p]
		if strings.HasPrefix(path.Base(p), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		for _, m := range splitManifests(content) {
			var head simpleHead
			if err := yaml.Unmarshal([]byte(m), &head); err != nil {
				return nil, fmt.Errorf("YAML parse error on %s: %w", p, err)
			}
			if strictYAML {
				var node map[string]interface{}
				if err := yamlv3.Unmarshal([]byte(m), &node); err != nil {
					return nil, fmt.Errorf("strict YAML error on %s (%s): %w", p, head.Kind, err)
				}
			}
			out = append(out, manifest{name: p, content: m, kind: head.Kind})
		}
	}
	order := map[string]int{}
	for i, k := range installOrder {
		order[k] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, aok := order[out[i].kind]
		b, bok := order[out[j].kind]
		switch {
		case !aok && !bok:
			return out[i].kind < out[j].kind
		case !aok:
			return false
		case !bok:
			return true
		}
		return a < b
	})
	return out, nil
}
