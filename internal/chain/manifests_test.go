package chain

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestLoadManifestsRepository reads a directory as a GitOps repository holds it: nested
// directories, multi-document files, a kind: List, JSON, comment-only documents, namespace-less
// objects, kinds the chain does not read, and a .git directory that is not walked.
func TestLoadManifestsRepository(t *testing.T) {
	o, err := LoadManifests([]string{"testdata/repo"}, nil, "prod")
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel(o)
	im := m.Impact([]RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}})
	want := Impact{
		Stores:          []Ref{{Kind: "ClusterSecretStore", Name: "vault"}},
		ExternalSecrets: []Ref{{Kind: "ExternalSecret", Namespace: "prod", Name: "order-service-regcred"}},
		Secrets:         []Ref{{Kind: "Secret", Namespace: "prod", Name: "regcred-order-service"}},
		// The CronJob names no pull secret and inherits its (namespace-less, so prod) account's.
		Workloads: []Ref{{Kind: "CronJob", Namespace: "prod", Name: "nightly-report"}, {Kind: "Deployment", Namespace: "prod", Name: "order-service"}},
	}
	if !reflect.DeepEqual(im, want) {
		t.Errorf("impact\n got %+v\nwant %+v", im, want)
	}
	es := o.ExternalSecrets[0]
	if got := es.Spec.Data[0].RemoteRef; got.Key != "order-service/regcred" || got.Property != "dockerconfigjson" {
		t.Errorf("spec.data[0].remoteRef = %+v", got)
	}
	store := m.Store(StoreKey{Kind: KindClusterSecretStore, Name: "vault"})
	if store == nil || *store.Vault().Path != "registry-creds" || store.Vault().KVVersion() != "v2" {
		t.Fatalf("store = %+v", store)
	}
}

func TestLoadManifestsStdinAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		path, stdin string
		wantFile    string
		wantLine    int
		wantErr     string
	}{
		"a helm template is not YAML: the line of the second document": {
			path:     write("chart.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Values.name }\n"),
			wantLine: 9, wantErr: "yaml",
		},
		"a field of the wrong type": {
			path:     write("bad.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template: 3\n"),
			wantLine: 1, wantErr: "Deployment",
		},
		"stdin is named": {
			path: "-", stdin: "kind: [\n", wantFile: "<stdin>", wantLine: 1, wantErr: "yaml",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadManifests([]string{tc.path}, strings.NewReader(tc.stdin), "default")
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a ManifestError", err)
			}
			file := tc.wantFile
			if file == "" {
				file = tc.path
			}
			if me.File != file || me.Line != tc.wantLine || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v (file %s line %d), want %s:%d mentioning %q", err, me.File, me.Line, file, tc.wantLine, tc.wantErr)
			}
		})
	}
	if _, err := LoadManifests([]string{filepath.Join(dir, "absent")}, nil, "default"); err == nil {
		t.Error("a missing path loaded without error")
	}
	o, err := LoadManifests([]string{"-"}, strings.NewReader("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\nimagePullSecrets: [{name: regcred}]\n"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.ServiceAccounts["ci/builder"]; !slices.Equal(got, []string{"regcred"}) {
		t.Errorf("ServiceAccounts = %v", o.ServiceAccounts)
	}
}
