package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
)

// reports are the reports the output tests print: the incident (one broken ExternalSecret, one
// ok, one of another provider, one unknown), and the change that causes it.
func reports(t *testing.T) map[string]*Report {
	t.Helper()
	f := newChainFixture()
	ok := f.es.DeepCopy()
	ok.Name = "ok-one"
	ok.Spec.Data[0].RemoteRef.Key, ok.Spec.SecretStoreRef.Name = "cubbyhole/x", "vault-nopath"
	aws := f.es.DeepCopy()
	aws.Name, aws.Spec.SecretStoreRef.Name = "aws-one", "aws"
	unknown := f.es.DeepCopy()
	unknown.Name, unknown.Spec.SecretStoreRef.Name = "unknown-one", "approle"
	awsStore := &chain.Store{Kind: chain.KindSecretStore, Namespace: "prod", Name: "aws", Spec: &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"aws"}}}}
	nopath := *f.store
	nopath.Name = "vault-nopath"
	npv := *f.store.Spec.Provider.Vault
	npv.Path = nil
	nopath.Spec = &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &npv}}
	approle := *f.store
	approle.Name = "approle"
	pv := *f.store.Spec.Provider.Vault
	pv.Path, pv.Auth = nil, &chain.VaultAuth{AppRole: json.RawMessage(`{}`)}
	approle.Spec = &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &pv}}
	o := &chain.Objects{ExternalSecrets: []*chain.ExternalSecret{f.es, ok, aws, unknown}, Stores: []*chain.Store{f.store, &nopath, awsStore, &approle}}
	o.Workloads = []*chain.Workload{{Kind: "Deployment", Namespace: "prod", Name: "order-service",
		PullSecrets: []string{"regcred-order-service"}, ServiceAccount: "default", Inherits: true}}
	m := chain.NewModel(o)
	before := f.vault(t)
	delete(f.policies, "eso-order-service")
	after := f.vault(t)
	change := CheckChange(m, before, after)
	change.PlanChanges = []string{"delete vault_policy.eso_order_service (policy eso-order-service)"}
	return map[string]*Report{"incident": Check(m, after), "change": change}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	rs := reports(t)
	cases := map[string]struct {
		report *Report
		want   []string
	}{
		"incident": {report: rs["incident"], want: []string{
			"Vault: files policies/ + roles.yaml\n",
			"VERDICT      EXTERNALSECRET              STORE                      ROLE                                  REASON\n",
			"broken       prod/order-service-regcred  SecretStore prod/vault-backend  kubernetes/external-secrets-operator  read on \"secret/data/order-service/regcred\"",
			"not-checked  prod/aws-one ",
			"unknown      prod/unknown-one ",
			"ok           prod/ok-one ",
			"Blast radius:\n  ExternalSecret prod/order-service-regcred → Secret prod/regcred-order-service → Deployment prod/order-service\n",
			"    broken: read on",
			"Policies roles name that files policies/ + roles.yaml does not define:\n  eso-order-service: named by role kubernetes/external-secrets-operator (roles.yaml:3)\n",
			"4 ExternalSecrets: 1 ok, 1 broken, 1 unknown, 1 not checked\n",
		}},
		"change": {report: rs["change"], want: []string{
			"Vault before: files policies/ + roles.yaml\nVault after:  files policies/ + roles.yaml\n  delete vault_policy.eso_order_service",
			"VERDICT      CHANGE                   EXTERNALSECRET",
			"broken       breaks                   prod/order-service-regcred",
			"ok           -                        prod/ok-one",
			"; the change breaks 1, fixes 0; 0 already broken before it\n",
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := WriteTable(&b, tc.report); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range tc.want {
				if !strings.Contains(squeeze(out), squeeze(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// squeeze folds runs of spaces, so the expectations do not depend on column widths.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

func TestWriteTableCleansControlCharacters(t *testing.T) {
	t.Parallel()
	r := &Report{Vault: "evil\x1b[2J", ExternalSecrets: []Result{{ExternalSecret: Object{Namespace: "ns", Name: "a\nb"}, Verdict: OK}}}
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "\x1b") || !strings.Contains(out, `evil\x1b[2J`) || !strings.Contains(out, `ns/a\nb`) {
		t.Errorf("not cleaned:\n%q", out)
	}
}

// TestWriteJSON: the JSON decodes back to the same report, and carries the schema.
func TestWriteJSON(t *testing.T) {
	t.Parallel()
	for name, r := range reports(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := WriteJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&back, r) {
				t.Errorf("round trip differs:\n%s", b.String())
			}
			if back.Schema != Schema || !strings.Contains(b.String(), `"file": "<Vault's built-in default policy>"`) {
				t.Errorf("schema %q, or HTML-escaped:\n%s", back.Schema, b.String())
			}
		})
	}
}

// TestWriteJUnit decodes the XML back: one testcase per ExternalSecret, a failure for what fails
// the check, skipped for the rest that is not ok.
func TestWriteJUnit(t *testing.T) {
	t.Parallel()
	type tcase struct {
		Name    string `xml:"name,attr"`
		Failure *struct {
			Message string `xml:"message,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
	}
	type doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name  string  `xml:"name,attr"`
			Cases []tcase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	for name, r := range reports(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := WriteJUnit(&b, r); err != nil {
				t.Fatal(err)
			}
			var d doc
			if err := xml.Unmarshal(b.Bytes(), &d); err != nil {
				t.Fatalf("%v:\n%s", err, b.String())
			}
			if d.Tests != 4 || d.Failures != 1 || d.Skipped != 2 || len(d.Suites) != 1 || len(d.Suites[0].Cases) != 4 {
				t.Fatalf("counts tests=%d failures=%d skipped=%d:\n%s", d.Tests, d.Failures, d.Skipped, b.String())
			}
			got := map[string]string{}
			for _, c := range d.Suites[0].Cases {
				switch {
				case c.Failure != nil:
					got[c.Name] = "failure"
					if !strings.Contains(c.Failure.Text, "pulled by Deployment prod/order-service") {
						t.Errorf("failure text lacks the blast radius: %q", c.Failure.Text)
					}
				case c.Skipped != nil:
					got[c.Name] = "skipped"
				default:
					got[c.Name] = "passed"
				}
			}
			want := map[string]string{"ExternalSecret prod/order-service-regcred": "failure", "ExternalSecret prod/ok-one": "passed",
				"ExternalSecret prod/aws-one": "skipped", "ExternalSecret prod/unknown-one": "skipped"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
