package webhook

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/credchain/credchain/internal/chain"
)

// fakeLookup is a map-backed Lookup for unit tests; the IndexLookup over real informers is covered
// by the envtest integration test and the benchmark.
type fakeLookup struct {
	es     map[string][]*ExternalSecret // "ns/secret"
	sa     map[string][]string          // "ns/name"
	events map[string][2]string         // "ns/es" -> reason, message
}

func (f *fakeLookup) ExternalSecretsFor(ns, secret string) []*ExternalSecret {
	return f.es[ns+"/"+secret]
}

func (f *fakeLookup) ServiceAccountPullSecrets(ns, name string) ([]string, bool) {
	s, ok := f.sa[ns+"/"+name]
	return s, ok
}

func (f *fakeLookup) LatestWarning(ns, es string) (string, string, bool) {
	e, ok := f.events[ns+"/"+es]
	return e[0], e[1], ok
}

var testNow = time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)

func newES(name, target string, created time.Time, ready *chain.ExternalSecretCondition) *ExternalSecret {
	es := &ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, CreationTimestamp: metav1.NewTime(created)}}
	es.Spec.Target.Name = target
	es.Spec.SecretStoreRef.Name = "vault"
	es.Spec.Target.Template = &chain.ExternalSecretTemplate{Type: chain.SecretTypeDockerConfigJSON}
	es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
	if ready != nil {
		es.Status.Conditions = []chain.ExternalSecretCondition{*ready}
		es.Status.RefreshTime = metav1.NewTime(testNow.Add(-10 * time.Minute))
		es.Status.Binding.Name = es.TargetName() // ESO binds the Secret it wrote
	}
	return es
}

func readyCond(status, reason, msg string) *chain.ExternalSecretCondition {
	return &chain.ExternalSecretCondition{Type: "Ready", Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 27, 10, 2, 11, 0, time.UTC))}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	day := testNow.Add(-24 * time.Hour)
	synced := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", "secret synced"))
	failing := newES("order-service-regcred", "regcred-order-service", day,
		readyCond("False", "SecretSyncedError", "could not get secret data from provider"))
	stale := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	stale.Status.RefreshTime = metav1.NewTime(testNow.Add(-4 * time.Hour))
	young := newES("order-service-regcred", "regcred-order-service", testNow.Add(-30*time.Second), nil)
	old := newES("order-service-regcred", "regcred-order-service", testNow.Add(-10*time.Minute), nil)
	other := newES("legacy-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	deleted := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretDeleted", "secret deleted due to DeletionPolicy"))
	missing := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretMissing", "secret will not be created due to CreationPolicy=Merge"))
	missing.Spec.Target.CreationPolicy = chain.CreationMerge
	none := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	none.Spec.Target.CreationPolicy = chain.CreationNone
	terminating := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	terminating.DeletionTimestamp = ptr.To(metav1.NewTime(testNow.Add(-time.Minute)))
	orphan := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	orphan.Spec.Target.CreationPolicy = chain.CreationOrphan
	orphan2 := newES("legacy-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	orphan2.Spec.Target.CreationPolicy = chain.CreationOrphan
	docker := func(es *ExternalSecret, typ string) *ExternalSecret {
		c := es.DeepCopy()
		c.Spec.Target.Template = &chain.ExternalSecretTemplate{Type: typ}
		return c
	}
	// Never synced: Ready=False from the store's validation, no refresh time, no binding.
	neverSynced := func(age time.Duration) *ExternalSecret {
		e := newES("order-service-regcred", "regcred-order-service", testNow.Add(-age), readyCond("False", "SecretSyncedError", "could not get provider client"))
		e.Status.RefreshTime, e.Status.Binding.Name = metav1.Time{}, ""
		return e
	}
	failingSince := func(lastSync time.Duration) *ExternalSecret {
		e := failing.DeepCopy()
		e.Status.RefreshTime = metav1.NewTime(testNow.Add(-lastSync))
		return e
	}
	neverWritten := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", "secret synced"))
	neverWritten.Status.Binding.Name = ""
	toConfigMap := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	toConfigMap.Spec.Target.Manifest = &chain.ExternalSecretManifest{APIVersion: "v1", Kind: "ConfigMap"}
	merged := newES("extra-keys", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	merged.Spec.Target.CreationPolicy = chain.CreationMerge
	mergeFailing := newES("extra-keys", "regcred-order-service", day, readyCond("False", "SecretSyncedError", "could not get secret data from provider"))
	mergeFailing.Spec.Target.CreationPolicy = chain.CreationMerge
	createdOnce := newES("order-service-regcred", "regcred-order-service", day, readyCond("True", "SecretSynced", ""))
	createdOnce.Spec.RefreshPolicy = "CreatedOnce"
	createdOnce.Status.RefreshTime = metav1.NewTime(testNow.Add(-72 * time.Hour))
	vault403 := map[string][2]string{"prod/order-service-regcred": {"UpdateFailed",
		"error processing spec.data[0] (key: order-service), err: Error making API request.\n\nURL: GET http://127.0.0.1:8200/v1/registry-creds/data/order-service\nCode: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied\n\n"}}

	tests := map[string]struct {
		es        map[string][]*ExternalSecret
		sa        map[string][]string
		events    map[string][2]string
		unmanaged UnmanagedPolicy
		policy    func(*Policy)
		create    bool     // decide as a CREATE (every pull secret is new)
		old       *PodRefs // decide as an UPDATE from old; neither: an UPDATE keeping every pull secret
		refs      PodRefs
		reason    Reason
		denials   []string // exact field error strings
		warnings  []string // substrings, one per warning
	}{
		"ready is allowed": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {synced}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason: ReasonSynced,
		},
		"no pull secrets is allowed": {
			refs:   PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "default"},
			reason: ReasonNoPullSecrets,
		},
		"ready but stale warns": {
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {stale}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonStale,
			warnings: []string{`spec.template.spec.imagePullSecrets[0]: secret "regcred-order-service" from ExternalSecret prod/order-service-regcred was last refreshed at 2026-11-27T06:30:00Z, more than 3 refresh intervals (1h0m0s) ago; the credential may be stale`},
		},
		"not synced is denied with ESO's event": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {failing}},
			events:  vault403,
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T10:02:11Z; ESO's last warning (UpdateFailed): error processing spec.data[0] (key: order-service), err: Error making API request. URL: GET http://127.0.0.1:8200/v1/registry-creds/data/order-service Code: 403. Errors: * 1 error occurred: * permission denied; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`},
		},
		"no ready condition within grace warns": {
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {young}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonPendingGrace,
			warnings: []string{`has not synced yet (no Ready verdict for 30s, grace period 2m0s)`},
		},
		"no ready condition after grace is denied": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {old}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonPending,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which has reported no Ready condition since it was created at 2026-11-27T10:20:00Z (grace period 2m0s); check that External Secrets Operator is running and the store "vault" is valid: kubectl describe externalsecret order-service-regcred -n prod`},
		},
		"Ready=Unknown within grace warns": {
			es: map[string][]*ExternalSecret{"prod/regcred-order-service": {func() *ExternalSecret {
				e := newES("order-service-regcred", "regcred-order-service", day, readyCond("Unknown", "", ""))
				e.Status.Conditions[0].LastTransitionTime = metav1.NewTime(testNow.Add(-time.Minute))
				return e
			}()}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonPendingGrace,
			warnings: []string{`has not synced yet (no Ready verdict for 1m0s, grace period 2m0s)`},
		},
		"Ready=Unknown after grace is denied": {
			es: map[string][]*ExternalSecret{"prod/regcred-order-service": {func() *ExternalSecret {
				e := newES("order-service-regcred", "regcred-order-service", day, readyCond("Unknown", "", ""))
				e.Status.Conditions[0].LastTransitionTime = metav1.NewTime(testNow.Add(-10 * time.Minute))
				return e
			}()}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonPending,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which has been Ready=Unknown since 2026-11-27T10:20:00Z (grace period 2m0s); check that External Secrets Operator is running and the store "vault" is valid: kubectl describe externalsecret order-service-regcred -n prod`},
		},
		"a multi-MB pull secret name is denied in a few bytes": {
			refs:    PodRefs{SpecPath: "spec", ImagePullSecrets: []string{strings.Repeat("a", 4<<20)}, ServiceAccountName: "default"},
			reason:  ReasonInvalidName,
			denials: []string{`spec.imagePullSecrets[0]: Invalid value: "` + strings.Repeat("a", 63) + `…": not a valid Secret name (4194304 bytes, at most 253)`},
		},
		"empty references are ignored": {
			sa:     map[string][]string{"prod/default": {""}},
			refs:   PodRefs{SpecPath: "spec", ImagePullSecrets: []string{""}, ServiceAccountName: "default"},
			reason: ReasonNoPullSecrets,
		},
		"unmanaged is denied by default": {
			refs:    PodRefs{SpecPath: "spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.imagePullSecrets[0]: Forbidden: secret "handmade" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: handmade, or label the namespace credchain.io/enforcement=warn`},
		},
		"unmanaged warns when told to": {
			unmanaged: UnmanagedWarn,
			refs:      PodRefs{SpecPath: "spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:    ReasonUnmanaged,
			warnings:  []string{`spec.imagePullSecrets[0]: secret "handmade" is not written by any ExternalSecret`},
		},
		"unmanaged allowed when told to": {
			unmanaged: UnmanagedAllow,
			refs:      PodRefs{SpecPath: "spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:    ReasonSynced,
		},
		"two owners of one secret are denied: ESO fails the second": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {synced, other}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonAmbiguous,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is claimed by 2 ExternalSecrets (prod/legacy-regcred, prod/order-service-regcred), and prod/legacy-regcred, prod/order-service-regcred have creationPolicy Owner: ESO lets only the ExternalSecret that controls the Secret write it and fails the others with "target is owned by another ExternalSecret"; keep one writer (delete the others or point them at their own Secrets)`},
		},
		"two Orphan creators overwrite each other": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {orphan, orphan2}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonAmbiguous,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is claimed by 2 ExternalSecrets (prod/legacy-regcred, prod/order-service-regcred), and 2 of them create it with creationPolicy Orphan, so each sync overwrites the other's data; keep one creator and make the others creationPolicy Merge`},
		},
		"create: a secret no ExternalSecret writes yet is admitted with a warning": {
			create:   true,
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonNotBackedYet,
			warnings: []string{`spec.template.spec.imagePullSecrets[0]: secret "regcred-order-service" is not written by any ExternalSecret in namespace prod yet; admitted because this change adds it, but the next change of the pod template is denied unless an ExternalSecret with spec.target.name: regcred-order-service writes it`},
		},
		"update adding an unbacked secret warns": {
			old:      &PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"ok"}, ServiceAccountName: "default"},
			es:       map[string][]*ExternalSecret{"prod/ok": {synced}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"ok", "new"}, ServiceAccountName: "default"},
			reason:   ReasonNotBackedYet,
			warnings: []string{`secret "new" is not written by any ExternalSecret in namespace prod yet`},
		},
		"update keeping an unbacked secret is denied": {
			old:     &PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "handmade" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: handmade, or label the namespace credchain.io/enforcement=warn`},
		},
		"update keeping an inherited unbacked secret is denied": {
			sa:      map[string][]string{"prod/builder": {"handmade"}},
			old:     &PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "builder"},
			refs:    PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "builder"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.template.spec.serviceAccountName: Forbidden: serviceaccount "builder" imagePullSecrets[0] (inherited by pods that name no pull secret): secret "handmade" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: handmade, or label the namespace credchain.io/enforcement=warn`},
		},
		"create with --unmanaged-secrets=warn still warns as unmanaged": {
			create: true, unmanaged: UnmanagedWarn,
			refs:     PodRefs{SpecPath: "spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:   ReasonUnmanaged,
			warnings: []string{`secret "handmade" is not written by any ExternalSecret`},
		},
		"a young ExternalSecret that never synced is Ready=False: no verdict yet": {
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {neverSynced(3 * time.Second)}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonPendingGrace,
			warnings: []string{`secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which has not synced yet (Ready=False, SecretSyncedError, 3s after creation, grace period 2m0s)`},
		},
		"never synced and past the grace period is denied": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {neverSynced(5 * time.Minute)}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get provider client) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`},
		},
		"grace period 0: a young never-synced ExternalSecret is denied": {
			policy:  func(p *Policy) { p.GracePeriod = 0 },
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {neverSynced(3 * time.Second)}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get provider client) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`},
		},
		"failing within --failing-grace of its last sync warns": {
			policy:   func(p *Policy) { p.FailingGrace = time.Hour },
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {failingSince(20 * time.Minute)}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonFailingGrace,
			warnings: []string{`which is failing (Ready=False, SecretSyncedError) but last synced at 2026-11-27T10:10:00Z, within --failing-grace 1h0m0s; the Secret still holds that credential until it expires`},
		},
		"failing past --failing-grace is denied": {
			policy:  func(p *Policy) { p.FailingGrace = time.Hour },
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {failingSince(2 * time.Hour)}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`},
		},
		"an Opaque target is no pull secret: warned": {
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {docker(synced, "Opaque")}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonNotPullable,
			warnings: []string{`spec.template.spec.imagePullSecrets[0]: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which writes a Secret of type Opaque; the kubelet only pulls with kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg Secrets: set spec.target.template.type: kubernetes.io/dockerconfigjson`},
		},
		"an Opaque target is denied under --non-docker-secrets=deny": {
			policy:  func(p *Policy) { p.NonDockerSecrets = UnmanagedDeny },
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {docker(synced, "Opaque")}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotPullable,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which writes a Secret of type Opaque; the kubelet only pulls with kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg Secrets: set spec.target.template.type: kubernetes.io/dockerconfigjson`},
		},
		"a dockercfg template is a pull secret": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {docker(synced, chain.SecretTypeDockercfg)}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason: ReasonSynced,
		},
		"Ready=True but never written (deletionPolicy Retain, empty first sync) warns": {
			es:       map[string][]*ExternalSecret{"prod/regcred-order-service": {neverWritten}},
			refs:     PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:   ReasonNeverWritten,
			warnings: []string{`which reports Ready=True (SecretSynced) but has never written a Secret (status.binding is empty: the provider returned no data)`},
		},
		"a non-Secret target (spec.target.manifest) backs no Secret": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {toConfigMap}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is not written by any ExternalSecret in namespace prod (ExternalSecret prod/order-service-regcred writes a ConfigMap, not a Secret); pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: regcred-order-service, or label the namespace credchain.io/enforcement=warn`},
		},
		"a Pod does not inherit at admission: its ServiceAccount's broken secret is not checked": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {failing}},
			sa:     map[string][]string{"prod/builder": {"regcred-order-service"}},
			refs:   PodRefs{SpecPath: "spec", Kind: "Pod", ServiceAccountName: "builder"},
			reason: ReasonNoPullSecrets,
		},
		"Ready=True but the Secret was deleted (deletionPolicy Delete)": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {deleted}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which reports Ready=True but the provider returned no data and its deletionPolicy Delete removed the Secret (SecretDeleted: secret deleted due to DeletionPolicy); pods would fail to pull: kubectl describe externalsecret order-service-regcred -n prod`},
		},
		"Ready=True but Merge found no Secret": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {missing}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which reports Ready=True but its creationPolicy Merge needs an existing Secret to merge into, and there is none (SecretMissing: secret will not be created due to CreationPolicy=Merge); pods would fail to pull: kubectl describe externalsecret order-service-regcred -n prod`},
		},
		"creationPolicy None writes nothing: the Secret is unmanaged": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {none}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is not written by any ExternalSecret in namespace prod (ExternalSecret prod/order-service-regcred has creationPolicy None); pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: regcred-order-service, or label the namespace credchain.io/enforcement=warn`},
		},
		"an ExternalSecret being deleted no longer backs its Secret": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {terminating}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is not written by any ExternalSecret in namespace prod (ExternalSecret prod/order-service-regcred is being deleted); pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: regcred-order-service, or label the namespace credchain.io/enforcement=warn`},
		},
		"one Orphan creator and one Merge writer, both synced": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {orphan, merged}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason: ReasonSynced,
		},
		"an Owner and a Merge writer: ESO fails the Merge": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {synced, merged}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonAmbiguous,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" is claimed by 2 ExternalSecrets (prod/extra-keys, prod/order-service-regcred), and prod/order-service-regcred has creationPolicy Owner: ESO lets only the ExternalSecret that controls the Secret write it and fails the others with "target is owned by another ExternalSecret"; keep one writer (delete the others or point them at their own Secrets)`},
		},
		"one Orphan creator synced, its Merge writer failing": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {orphan, mergeFailing}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/extra-keys, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret extra-keys -n prod force-sync=$(date +%s) --overwrite`},
		},
		"refreshPolicy CreatedOnce is never stale": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {createdOnce}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason: ReasonSynced,
		},
		"service account secret is checked": {
			es:      map[string][]*ExternalSecret{"prod/regcred-order-service": {failing}},
			sa:      map[string][]string{"prod/builder": {"regcred-order-service"}},
			refs:    PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "builder"},
			reason:  ReasonNotSynced,
			denials: []string{`spec.template.spec.serviceAccountName: Forbidden: serviceaccount "builder" imagePullSecrets[0] (inherited by pods that name no pull secret): secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`},
		},
		"the pod's own secrets replace the account's: a broken account secret is not checked": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {synced}, "prod/regcred-broken": {failing}},
			sa:     map[string][]string{"prod/default": {"regcred-broken", "handmade"}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"regcred-order-service"}, ServiceAccountName: "default"},
			reason: ReasonSynced,
		},
		"secret on both pod and service account is reported once": {
			sa:      map[string][]string{"prod/default": {"handmade"}},
			refs:    PodRefs{SpecPath: "spec", ImagePullSecrets: []string{"handmade"}, ServiceAccountName: "default"},
			reason:  ReasonUnmanaged,
			denials: []string{`spec.imagePullSecrets[0]: Forbidden: secret "handmade" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: handmade, or label the namespace credchain.io/enforcement=warn`},
		},
		"every failing secret is reported, first reason wins": {
			es:     map[string][]*ExternalSecret{"prod/regcred-order-service": {failing}, "prod/ok": {synced}},
			refs:   PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"ok", "regcred-order-service", "handmade"}, ServiceAccountName: "default"},
			reason: ReasonNotSynced,
			denials: []string{
				`spec.template.spec.imagePullSecrets[1]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T10:02:11Z; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`,
				`spec.template.spec.imagePullSecrets[2]: Forbidden: secret "handmade" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: handmade, or label the namespace credchain.io/enforcement=warn`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.unmanaged == "" {
				tc.unmanaged = UnmanagedDeny
			}
			d := &Decider{
				Lookup: &fakeLookup{es: tc.es, sa: tc.sa, events: tc.events},
				Policy: Policy{Unmanaged: tc.unmanaged, GracePeriod: 2 * time.Minute, StaleFactor: 3},
			}
			if tc.policy != nil {
				tc.policy(&d.Policy)
			}
			var got Decision
			switch {
			case tc.create:
				got = d.DecideChange("prod", tc.refs, nil, testNow)
			case tc.old != nil:
				got = d.DecideChange("prod", tc.refs, tc.old, testNow)
			default:
				got = d.Decide("prod", tc.refs, testNow)
			}
			if got.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", got.Reason, tc.reason)
			}
			if len(got.Denials) != len(tc.denials) {
				t.Fatalf("denials = %v, want %d", got.Denials, len(tc.denials))
			}
			for i, want := range tc.denials {
				if g := got.Denials[i].Error(); g != want {
					t.Errorf("denial[%d]:\n got %s\nwant %s", i, g, want)
				}
			}
			if len(got.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d", got.Warnings, len(tc.warnings))
			}
			for i, want := range tc.warnings {
				if !strings.Contains(got.Warnings[i], want) {
					t.Errorf("warning[%d] = %q, want it to contain %q", i, got.Warnings[i], want)
				}
			}
		})
	}
}

func TestDecisionMessage(t *testing.T) {
	t.Parallel()
	d := &Decider{Lookup: &fakeLookup{}, Policy: Policy{Unmanaged: UnmanagedDeny}}
	tests := map[string]struct {
		refs PodRefs
		want string
	}{
		"one": {
			refs: PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"a"}},
			want: `deployment prod/web: a pull secret is not backed by a synced ExternalSecret: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "a" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: a, or label the namespace credchain.io/enforcement=warn; the whole chain: credchain explain deployment/web -n prod`,
		},
		"two": {
			refs: PodRefs{SpecPath: "spec.template.spec", ImagePullSecrets: []string{"a", "b"}},
			want: `deployment prod/web: 2 pull secrets are not backed by a synced ExternalSecret: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "a" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: a, or label the namespace credchain.io/enforcement=warn; spec.template.spec.imagePullSecrets[1]: Forbidden: secret "b" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: b, or label the namespace credchain.io/enforcement=warn; the whole chain: credchain explain deployment/web -n prod`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dec := d.Decide("prod", tc.refs, testNow)
			if got := dec.Message("Deployment", "prod", "web"); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			// A pod from generateName has no name explain could take: no hint.
			if got := dec.Message("Pod", "prod", ""); strings.Contains(got, "credchain explain") {
				t.Errorf("a nameless object's denial points at explain: %s", got)
			}
		})
	}
}
