package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/diff"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/credchain/credchain/internal/testenv"
)

// chart is the Helm chart, relative to this package's directory (the tests' working directory).
const chart = "charts/credchain"

// TestChartRendersKustomize keeps the two installs from drifting: the chart with each set of values
// renders exactly the objects kustomize builds from the matching directories, compared object by
// object after parsing (key order and YAML style don't matter; every field, label and annotation does).
func TestChartRendersKustomize(t *testing.T) {
	t.Parallel()
	monitoringOn := []string{"monitoring.prometheusRule.enabled=true", "monitoring.podMonitor.enabled=true", "monitoring.dashboard.enabled=true"}
	for name, tc := range map[string]struct {
		set       []string
		kustomize []string
	}{
		"defaults are manifests/default":                            {kustomize: []string{"default"}},
		"certs.mode=cert-manager is manifests/cert-manager":         {set: []string{"certs.mode=cert-manager"}, kustomize: []string{"cert-manager"}},
		"monitoring on is manifests/default + manifests/monitoring": {set: monitoringOn, kustomize: []string{"default", "monitoring"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var want []byte
			for _, dir := range tc.kustomize {
				want = append(want, kustomize(t, dir)...)
				want = append(want, "\n---\n"...)
			}
			got := helmTemplate(t, "credchain-system", tc.set...)
			if err := sameObjects(got, want); err != nil {
				t.Errorf("helm template %v differs from kustomize %v:\n%v", tc.set, tc.kustomize, err)
			}
		})
	}
}

// helmTemplate renders the chart as a release named credchain in namespace ns, with --set values
// ("json:" values go through --set-json, which types numbers as a values file does: float64).
func helmTemplate(t testing.TB, ns string, set ...string) []byte {
	t.Helper()
	args := []string{"template", "credchain", chart, "--namespace", ns}
	for _, s := range set {
		if v, ok := strings.CutPrefix(s, "json:"); ok {
			args = append(args, "--set-json", v)
			continue
		}
		args = append(args, "--set", s)
	}
	return run(t, testenv.Helm(t), args...)
}

// kustomize builds dir with the kustomize built into kubectl.
func kustomize(t testing.TB, dir string) []byte {
	t.Helper()
	return run(t, testenv.Kubectl(t), "kustomize", dir)
}

func run(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// objectKey identifies an object in a render: apiVersion, kind, namespace and name.
type objectKey struct{ APIVersion, Kind, Namespace, Name string }

func (k objectKey) String() string {
	return fmt.Sprintf("%s %s %s/%s", k.APIVersion, k.Kind, k.Namespace, k.Name)
}

// parseObjects decodes a multi-document YAML stream into objects keyed by objectKey. Values go
// through JSON so both sides compare with the same types (every number a float64, no YAML tags).
func parseObjects(stream []byte) (map[objectKey]map[string]any, error) {
	objs := map[objectKey]map[string]any{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, err
		}
		if obj == nil {
			continue // an empty document
		}
		meta, _ := obj["metadata"].(map[string]any)
		k := objectKey{fmt.Sprint(obj["apiVersion"]), fmt.Sprint(obj["kind"]), fmt.Sprint(meta["namespace"]), fmt.Sprint(meta["name"])}
		if meta["namespace"] == nil {
			k.Namespace = ""
		}
		if _, dup := objs[k]; dup {
			return nil, fmt.Errorf("%s: rendered twice", k)
		}
		objs[k] = obj
	}
}

// sameObjects reports, per object, what differs between two renders: missing on either side or a
// field diff.
func sameObjects(got, want []byte) error {
	g, err := parseObjects(got)
	if err != nil {
		return fmt.Errorf("parsing the first render: %w", err)
	}
	w, err := parseObjects(want)
	if err != nil {
		return fmt.Errorf("parsing the second render: %w", err)
	}
	var errs []string
	for k, wo := range w {
		switch gobj, ok := g[k]; {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: missing from the first render", k))
		case !reflect.DeepEqual(gobj, wo):
			errs = append(errs, fmt.Sprintf("%s differs (- first, + second):\n%s", k, diff.Diff(gobj, wo)))
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			errs = append(errs, fmt.Sprintf("%s: only in the first render", k))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return errors.New(strings.Join(errs, "\n"))
}
