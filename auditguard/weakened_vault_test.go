package auditguard_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// TestPolicyWeakened (issue 15 item 3), against a real Vault and a real kube-apiserver with ESO's
// CRDs: the runbook's role references eso-order-service; a ClusterSecretStore logs in with it;
// ExternalSecret prod/order-service reads registry-creds/data/order-service; a Deployment pulls
// with its Secret. An update of the policy that takes that read away raises policy.weakened
// naming the ExternalSecret, the path, the Deployment and the writer; an update that only adds an
// unrelated rule raises nothing. With the policy in the desired state, the same edit is drift,
// corrected with --correct-drift, and the event says the IaC's rule decided.
func TestPolicyWeakened(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	c, kubeconfig := startKube(t)
	ctx := t.Context()
	for _, o := range []crclient.Object{
		vaultStore("ClusterSecretStore", "", "vault", "external-secrets-operator", ""),
		externalSecret("prod", "order-service", "ClusterSecretStore", "vault", "regcred-order-service"),
		pullingDeployment("prod", "order-service", "regcred-order-service"),
		// Pulls with another Secret: not in the blast radius of what the edit breaks.
		externalSecret("prod", "payment-service", "ClusterSecretStore", "vault", "regcred-payment-service"),
		pullingDeployment("prod", "payment-service", "regcred-payment-service"),
	} {
		must(t, c.Create(ctx, o))
	}
	const noRead = `path "registry-creds/creds/order-service" { capabilities = ["read"] }
`
	ref := func(kind, ns, name string) events.ObjectRef {
		return events.ObjectRef{Kind: kind, Namespace: ns, Name: name}
	}
	wantLost := []events.LostAccess{{ExternalSecret: ref("ExternalSecret", "prod", "order-service"),
		Role: events.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}, Path: "registry-creds/data/order-service",
		Capability: "read", Why: `spec.data[0].remoteRef.key "order-service"`}}
	wantBlast := &events.BlastRadius{Stores: []events.ObjectRef{ref("ClusterSecretStore", "", "vault")},
		ExternalSecrets: []events.ObjectRef{ref("ExternalSecret", "prod", "order-service")},
		Secrets:         []events.ObjectRef{ref("Secret", "prod", "regcred-order-service")},
		Workloads:       []events.ObjectRef{ref("Deployment", "prod", "order-service")}}

	t.Run("snapshot rule", func(t *testing.T) {
		e := setup(t)
		e.kube, e.metrics = kubeconfig, testenv.FreeAddrT(t)
		e.startGuard(t, false)
		e.enableDevices(t)
		waitMetric(t, e.metrics, "credchain_auditguard_blast_radius_ready", 1)
		bot := e.bot(t)

		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", noRead))
		ev := e.events.wait(t, events.PolicyWeakened, "eso-order-service", n)
		if !reflect.DeepEqual(ev.Lost, wantLost) || !reflect.DeepEqual(ev.BlastRadius, wantBlast) {
			t.Errorf("lost %+v\nblast radius %+v", ev.Lost, ev.BlastRadius)
		}
		if ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" || ev.Rule != events.RuleSnapshot || ev.Action != "none" ||
			!strings.Contains(ev.Message, `read on "registry-creds/data/order-service" for ExternalSecret prod/order-service`) {
			t.Errorf("event = %+v", ev)
		}
		if got := e.policy(t, "eso-order-service"); got != noRead {
			t.Errorf("policy = %q, want the edit left in place (no desired state)", got)
		}
		testenv.WriteExample(t, ev) // for docs/events.md

		// Giving the read back and adding an unrelated rule take nothing from ESO.
		n = e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", orderServicePolicy))
		must(t, bot.Sys().PutPolicy("eso-order-service", orderServicePolicy+`path "secret/data/unrelated" { capabilities = ["read"] }
`))
		if got := ofType(e.settled(t, n), events.PolicyWeakened); len(got) != 0 {
			t.Errorf("events = %+v, want no policy.weakened", got)
		}

		// A policy the role names but Vault lacks, created with a deny over what another grants.
		_, err := e.root.Logical().Write("auth/kubernetes/role/external-secrets-operator", map[string]any{
			"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "external-secrets",
			"policies": "eso-order-service,eso-payment-service,eso-extra"})
		must(t, err)
		e.flush(t)
		n = e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-extra", `path "registry-creds/data/order-service" { capabilities = ["deny"] }`))
		ev = e.events.wait(t, events.PolicyWeakened, "eso-extra", n)
		if !reflect.DeepEqual(ev.Lost, wantLost) || ev.SnapshotFrom != nil || ev.Actor == nil {
			t.Errorf("event = %+v", ev)
		}
	})

	t.Run("the desired state's rule, --correct-drift", func(t *testing.T) {
		e := setup(t)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "eso-order-service.hcl"), orderServicePolicy)
		metrics := testenv.FreeAddrT(t)
		e.metrics = metrics
		e.startDesired(t, func(c *auditguard.Config) {
			c.DesiredPolicies, c.CorrectDrift, c.BlastRadius, c.Kubeconfig = dir, true, true, kubeconfig
		})
		e.enableDevices(t)
		waitMetric(t, metrics, "credchain_auditguard_blast_radius_ready", 1)
		bot := e.bot(t)

		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", noRead))
		ev := e.events.wait(t, events.PolicyWeakened, "eso-order-service", n)
		if !reflect.DeepEqual(ev.Lost, wantLost) || !reflect.DeepEqual(ev.BlastRadius, wantBlast) || ev.Rule != events.RuleIaC ||
			ev.Reason != "drift" || ev.Action != "corrected" || ev.SnapshotFrom == nil || ev.SnapshotFrom.Origin != filepath.Join(dir, "eso-order-service.hcl") {
			t.Errorf("event = %+v", ev)
		}
		if d := e.events.wait(t, events.PolicyDrifted, "eso-order-service", n); d.Action != "corrected" {
			t.Errorf("drift event = %+v", d)
		}
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
	})
}

// startKube starts a real kube-apiserver with ESO's CRDs and namespaces prod and external-secrets,
// and returns a client of it and the path of a kubeconfig for the guard's --blast-radius.
func startKube(t *testing.T) (crclient.Client, string) {
	t.Helper()
	testenv.KubebuilderAssets(t)
	kenv := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}, ErrorIfCRDPathMissing: true})
	cfg, err := kenv.Start()
	must(t, err)
	t.Cleanup(func() { _ = kenv.Stop() })
	c, err := crclient.New(cfg, crclient.Options{})
	must(t, err)
	for _, ns := range []string{"prod", "external-secrets"} {
		must(t, c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	user, err := kenv.AddUser(envtest.User{Name: "credchain-auditguard", Groups: []string{"system:masters"}}, nil)
	must(t, err)
	kc, err := user.KubeConfig()
	must(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, os.WriteFile(kubeconfig, kc, 0o600))
	return c, kubeconfig
}
