package chain

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func addr[T any](v T) *T { return &v }

// vaultStore is a SecretStore prod/vault of the Vault provider with Kubernetes auth.
func kvStore(path *string, version string) *Store {
	return &Store{Kind: KindSecretStore, Namespace: "prod", Name: "vault", Spec: &StoreSpec{Provider: StoreProvider{
		Vault: &VaultProvider{Server: "https://vault:8200", Path: path, Version: version,
			Auth: &VaultAuth{Kubernetes: &VaultKubernetesAuth{Role: "eso"}}}}}}
}

func dataItems(items ...RemoteRef) *ExternalSecret {
	es := &ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "regcred"},
		Spec: ExternalSecretSpec{SecretStoreRef: StoreRef{Name: "vault"}}}
	for _, r := range items {
		es.Spec.Data = append(es.Spec.Data, ExternalSecretData{SecretKey: "k", RemoteRef: r})
	}
	return es
}

func findItem(f Find) *ExternalSecret {
	es := dataItems()
	es.Spec.DataFrom = []ExternalSecretDataFrom{{Find: &f}}
	return es
}

// login and lookup are the two requests every validated Kubernetes-auth store starts with.
var (
	loginReq  = VaultRequest{Kind: RequestLogin, Path: "auth/kubernetes/login", Why: `spec.provider.vault.auth.kubernetes: login as role "eso"`}
	lookupReq = VaultRequest{Kind: RequestTokenLookup, Path: "auth/token/lookup-self", Capability: "read",
		Why: "SecretStore prod/vault validation: token lookup-self (if it fails, the store is not Ready and ESO fails every ExternalSecret on it)"}
)

func readReq(path, why string) VaultRequest {
	return VaultRequest{Kind: RequestSecret, Path: path, Capability: "read", Why: why}
}

// TestVaultRequests holds the paths to ESO v0.16.2's pkg/provider/vault: each case names the
// function whose behaviour it pins (client_get.go, client_get_all_secrets.go, auth.go, ...).
func TestVaultRequests(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		store *Store
		es    *ExternalSecret
		want  []VaultRequest // after the login and lookup
		notes []string       // substrings, one per note
	}{
		"buildPath: no path, v2 (CRD default) puts data/ after the key's first segment": {
			store: kvStore(nil, ""), es: dataItems(RemoteRef{Key: "secret/order-service/regcred"}),
			want: []VaultRequest{readReq("secret/data/order-service/regcred", `spec.data[0].remoteRef.key "secret/order-service/regcred"`)},
		},
		"buildPath: no path, v2, a key already holding /data/ is used as is": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret/data/x"}),
			want: []VaultRequest{readReq("secret/data/x", `spec.data[0].remoteRef.key "secret/data/x"`)},
		},
		"buildPath: no path, v2, /data/ deeper in the key also means as is": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret/app/data/x"}),
			want: []VaultRequest{readReq("secret/app/data/x", `spec.data[0].remoteRef.key "secret/app/data/x"`)},
		},
		"buildPath: no path, v2, a one-segment key becomes <key>/data": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret"}),
			want: []VaultRequest{readReq("secret/data", `spec.data[0].remoteRef.key "secret"`)},
		},
		"buildPath: no path, v1 uses the key as is": {
			store: kvStore(nil, "v1"), es: dataItems(RemoteRef{Key: "kv/app/x"}),
			want: []VaultRequest{readReq("kv/app/x", `spec.data[0].remoteRef.key "kv/app/x"`)},
		},
		"buildPath: path set, v2 prepends <path>/data/": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "order-service/regcred"}),
			want: []VaultRequest{readReq("secret/data/order-service/regcred", `spec.data[0].remoteRef.key "order-service/regcred"`)},
		},
		"buildPath: path set, a key starting with <path>/ is cut of it first (secret/secret/x is unreachable)": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "secret/x"}),
			want: []VaultRequest{readReq("secret/data/x", `spec.data[0].remoteRef.key "secret/x"`)},
		},
		"buildPath: path set, v2, <path>/data/ in the key is cut too": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "secret/data/x"}),
			want: []VaultRequest{readReq("secret/data/x", `spec.data[0].remoteRef.key "secret/data/x"`)},
		},
		"buildPath: path set, v2, data/ not after the mount is kept": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "data/x"}),
			want: []VaultRequest{readReq("secret/data/data/x", `spec.data[0].remoteRef.key "data/x"`)},
		},
		"buildPath: path set, a key equal to the mount is not cut": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "secret"}),
			want: []VaultRequest{readReq("secret/data/secret", `spec.data[0].remoteRef.key "secret"`)},
		},
		"buildPath: path set with a slash inside (a nested mount)": {
			store: kvStore(addr("kv/team"), "v2"), es: dataItems(RemoteRef{Key: "x"}),
			want: []VaultRequest{readReq("kv/team/data/x", `spec.data[0].remoteRef.key "x"`)},
		},
		"buildPath: path set, v1 prepends <path>/ and cuts it from the key": {
			store: kvStore(addr("kv"), "v1"), es: dataItems(RemoteRef{Key: "a"}, RemoteRef{Key: "kv/b"}),
			want: []VaultRequest{readReq("kv/a", `spec.data[0].remoteRef.key "a"`), readReq("kv/b", `spec.data[1].remoteRef.key "kv/b"`)},
		},
		"buildPath: a trailing slash on path is joined as written": {
			store: kvStore(addr("secret/"), "v2"), es: dataItems(RemoteRef{Key: "x"}),
			want:  []VaultRequest{readReq("secret//data/x", `spec.data[0].remoteRef.key "x"`)},
			notes: []string{`spec.provider.vault.path "secret/": ESO joins it to keys as written ("secret//data/key")`},
		},
		"readSecret: version becomes ?version=N, a parameter": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "x", Version: "3"}),
			want: []VaultRequest{{Kind: RequestSecret, Path: "secret/data/x", Capability: "read", Params: []string{"version"},
				Why: `spec.data[0].remoteRef.key "x" version "3"`}},
		},
		"buildMetadataPath: metadataPolicy Fetch, path set: <path>/metadata/<key>, the mount not cut": {
			store: kvStore(addr("secret"), "v2"), es: dataItems(RemoteRef{Key: "secret/x", MetadataPolicy: "Fetch"}),
			want: []VaultRequest{readReq("secret/metadata/secret/x", `spec.data[0].remoteRef.key "secret/x" (metadataPolicy Fetch)`)},
		},
		"buildMetadataPath: metadataPolicy Fetch, no path: the first /data/ becomes /metadata/": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret/data/x/data/y", MetadataPolicy: "Fetch"}),
			want: []VaultRequest{readReq("secret/metadata/x/data/y", `spec.data[0].remoteRef.key "secret/data/x/data/y" (metadataPolicy Fetch)`)},
		},
		"buildMetadataPath: metadataPolicy Fetch, no path, no data in the key: ESO refuses (errPathInvalid)": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret/x", MetadataPolicy: "Fetch"}),
			want: []VaultRequest{{Kind: RequestSecret, Capability: "read", Why: `spec.data[0].remoteRef.key "secret/x" (metadataPolicy Fetch)`,
				Fails: `no spec.provider.vault.path and "secret/x" holds no "data": ESO refuses it (provided Path isn't a valid kv v2 path)`}},
		},
		"buildMetadataPath: \"data\" without /data/ is used unchanged": {
			store: kvStore(nil, "v2"), es: dataItems(RemoteRef{Key: "secret/mydata", MetadataPolicy: "Fetch"}),
			want:  []VaultRequest{readReq("secret/mydata", `spec.data[0].remoteRef.key "secret/mydata" (metadataPolicy Fetch)`)},
			notes: []string{`"secret/mydata" holds "data" but no "/data/" segment`},
		},
		"GetSecret: metadataPolicy Fetch on v1 fails in ESO (errUnsupportedMetadataKvVersion)": {
			store: kvStore(addr("kv"), "v1"), es: dataItems(RemoteRef{Key: "x", MetadataPolicy: "Fetch"}),
			want: []VaultRequest{{Kind: RequestSecret, Capability: "read", Why: `spec.data[0].remoteRef.key "x" (metadataPolicy Fetch)`,
				Fails: "metadataPolicy Fetch on a KV v1 store: ESO refuses it (cannot perform metadata fetch operations with kv version v1)"}},
		},
		"GetAllSecrets/listSecrets: find, path set, v2: LIST <path>/metadata/<find.path>/": {
			store: kvStore(addr("secret"), "v2"), es: findItem(Find{Path: addr("team"), Name: &struct {
				RegExp string `json:"regexp,omitempty"`
			}{RegExp: ".*"}}),
			want:  []VaultRequest{{Kind: RequestSecret, Path: "secret/metadata/team/", Capability: "list", Why: `spec.dataFrom[0].find.path "team"`}},
			notes: []string{`spec.dataFrom[0].find: ESO also lists the subdirectories and must read every secret found under "secret/data/team/"`},
		},
		"GetAllSecrets: find without find.path lists the mount's metadata root, tags read metadata too": {
			store: kvStore(addr("secret"), "v2"), es: findItem(Find{Tags: map[string]string{"app": "x"}}),
			want:  []VaultRequest{{Kind: RequestSecret, Path: "secret/metadata/", Capability: "list", Why: "spec.dataFrom[0].find"}},
			notes: []string{"must read, with each one's metadata for the tags, every secret found"},
		},
		"GetAllSecrets: find, no path, v2: find.path must name <mount>/data/": {
			store: kvStore(nil, "v2"), es: findItem(Find{Path: addr("secret/data/team")}),
			want:  []VaultRequest{{Kind: RequestSecret, Path: "secret/metadata/team/", Capability: "list", Why: `spec.dataFrom[0].find.path "secret/data/team"`}},
			notes: []string{"find: ESO also lists"},
		},
		"GetAllSecrets: find, no path, v2, find.path without data: ESO refuses (errPathInvalid)": {
			store: kvStore(nil, "v2"), es: findItem(Find{Path: addr("secret/team")}),
			want: []VaultRequest{{Kind: RequestSecret, Capability: "list", Why: `spec.dataFrom[0].find.path "secret/team"`,
				Fails: `no spec.provider.vault.path and "secret/team/" holds no "data": ESO refuses it (provided Path isn't a valid kv v2 path)`}},
		},
		"GetAllSecrets: find by tags on v1 is not supported (errUnsupportedKvVersion)": {
			store: kvStore(addr("kv"), "v1"), es: findItem(Find{Tags: map[string]string{"a": "b"}}),
			want: []VaultRequest{{Kind: RequestSecret, Capability: "list", Why: "spec.dataFrom[0].find",
				Fails: "find by tags on a KV v1 store: ESO does not support it (cannot perform find by tag operations with kv version v1)"}},
		},
		"buildMetadataPath: find by name on v1 with a path lists <path>/<find.path>/": {
			store: kvStore(addr("kv"), "v1"), es: findItem(Find{Path: addr("team")}),
			want:  []VaultRequest{{Kind: RequestSecret, Path: "kv/team/", Capability: "list", Why: `spec.dataFrom[0].find.path "team"`}},
			notes: []string{`under "kv/team/"`},
		},
		"buildMetadataPath: find on v1 without a path dereferences nil in ESO": {
			store: kvStore(nil, "v1"), es: findItem(Find{}),
			want: []VaultRequest{{Kind: RequestSecret, Capability: "list", Why: "spec.dataFrom[0].find",
				Fails: "find on a KV v1 store without spec.provider.vault.path: ESO v0.16.2 dereferences the unset path and the reconcile fails"}},
		},
		"getProviderSecretData: dataFrom before data, extract like a data item": {
			store: kvStore(addr("secret"), "v2"),
			es: func() *ExternalSecret {
				es := dataItems(RemoteRef{Key: "a"})
				es.Spec.DataFrom = []ExternalSecretDataFrom{{Extract: &RemoteRef{Key: "b"}}}
				return es
			}(),
			want: []VaultRequest{readReq("secret/data/b", `spec.dataFrom[0].extract.key "b"`), readReq("secret/data/a", `spec.data[0].remoteRef.key "a"`)},
		},
		"getProviderSecretData: a generator item is noted, not requested": {
			store: kvStore(addr("secret"), "v2"),
			es: func() *ExternalSecret {
				es := dataItems(RemoteRef{Key: "a"})
				es.Spec.DataFrom = []ExternalSecretDataFrom{{SourceRef: &SourceRef{GeneratorRef: &struct {
					Kind string `json:"kind,omitempty"`
					Name string `json:"name,omitempty"`
				}{Kind: "Password", Name: "pw"}}}}
				return es
			}(),
			want:  []VaultRequest{readReq("secret/data/a", `spec.data[0].remoteRef.key "a"`)},
			notes: []string{`spec.dataFrom[0].sourceRef.generatorRef: Password "pw" is a generator, not checked`},
		},
		"Manager.Get: an item whose sourceRef names another store is not this store's": {
			store: kvStore(addr("secret"), "v2"),
			es: func() *ExternalSecret {
				es := dataItems(RemoteRef{Key: "a"}, RemoteRef{Key: "b"})
				es.Spec.Data[1].SourceRef = &SourceRef{StoreRef: &StoreRef{Name: "other"}}
				return es
			}(),
			want: []VaultRequest{readReq("secret/data/a", `spec.data[0].remoteRef.key "a"`)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, notes := VaultRequests(tc.store, tc.es)
			want := append([]VaultRequest{loginReq, lookupReq}, tc.want...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("requests:\n got %s\nwant %s", asJSON(got), asJSON(want))
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes: got %q, want %d matching %q", notes, len(tc.notes), tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %d: got %q, want it to hold %q", i, notes[i], n)
				}
			}
		})
	}
}

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// TestVaultRequestsAuth pins auth.go's setAuth and provider.go's initClient/isReferentSpec, and
// validate.go's Validate: who logs in where, and which stores get the token lookup.
func TestVaultRequestsAuth(t *testing.T) {
	t.Parallel()
	cluster := func(k *VaultKubernetesAuth) *Store {
		s := kvStore(addr("secret"), "v2")
		s.Kind, s.Namespace = KindClusterSecretStore, ""
		s.Spec.Provider.Vault.Auth.Kubernetes = k
		return s
	}
	cases := map[string]struct {
		store *Store
		kinds []string // of the requests
		path  string   // of the first request
		notes []string
	}{
		"SecretStore: login at the CRD's default mount, then lookup-self (Validate)": {
			store: kvStore(addr("secret"), "v2"), kinds: []string{RequestLogin, RequestTokenLookup, RequestSecret}, path: "auth/kubernetes/login",
		},
		"mountPath as written": {
			store: func() *Store {
				s := kvStore(addr("secret"), "v2")
				s.Spec.Provider.Vault.Auth.Kubernetes.MountPath = "k8s-prod"
				return s
			}(),
			kinds: []string{RequestLogin, RequestTokenLookup, RequestSecret}, path: "auth/k8s-prod/login",
		},
		"mountPath with slashes is noted": {
			store: func() *Store {
				s := kvStore(addr("secret"), "v2")
				s.Spec.Provider.Vault.Auth.Kubernetes.MountPath = "/k8s/"
				return s
			}(),
			kinds: []string{RequestLogin, RequestTokenLookup, RequestSecret}, path: "auth//k8s//login",
			notes: []string{`mountPath "/k8s/": ESO logs in at auth//k8s//login`},
		},
		"isReferentSpec: ClusterSecretStore, serviceAccountRef without namespace: no store validation": {
			store: cluster(&VaultKubernetesAuth{Role: "eso", ServiceAccountRef: &ServiceAccountRef{Name: "sa"}}),
			kinds: []string{RequestLogin, RequestSecret}, path: "auth/kubernetes/login",
		},
		"isReferentSpec: ClusterSecretStore, serviceAccountRef with namespace: validated": {
			store: cluster(&VaultKubernetesAuth{Role: "eso", ServiceAccountRef: &ServiceAccountRef{Name: "sa", Namespace: addr("eso")}}),
			kinds: []string{RequestLogin, RequestTokenLookup, RequestSecret}, path: "auth/kubernetes/login",
		},
		"isReferentSpec: ClusterSecretStore, secretRef without namespace: no store validation": {
			store: cluster(&VaultKubernetesAuth{Role: "eso", SecretRef: json.RawMessage(`{"name":"jwt"}`)}),
			kinds: []string{RequestLogin, RequestSecret}, path: "auth/kubernetes/login",
		},
		"isReferentSpec: ClusterSecretStore with ESO's own token is validated": {
			store: cluster(&VaultKubernetesAuth{Role: "eso"}),
			kinds: []string{RequestLogin, RequestTokenLookup, RequestSecret}, path: "auth/kubernetes/login",
		},
		"setAuth: tokenSecretRef comes before kubernetes": {
			store: func() *Store {
				s := kvStore(addr("secret"), "v2")
				s.Spec.Provider.Vault.Auth.TokenSecretRef = json.RawMessage(`{"name":"t"}`)
				return s
			}(),
			kinds: []string{RequestSecret}, path: "secret/data/a",
			notes: []string{"spec.provider.vault.auth.tokenSecretRef: ESO logs in with tokenSecretRef, which is not modelled"},
		},
		"setAuth: no auth at all": {
			store: func() *Store {
				s := kvStore(addr("secret"), "v2")
				s.Spec.Provider.Vault.Auth = nil
				return s
			}(),
			kinds: []string{RequestSecret}, path: "secret/data/a",
			notes: []string{"spec.provider.vault.auth: none set"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			es := dataItems(RemoteRef{Key: "a"})
			if tc.store.Kind == KindClusterSecretStore {
				es.Spec.SecretStoreRef.Kind = KindClusterSecretStore
			}
			got, notes := VaultRequests(tc.store, es)
			var kinds []string
			for _, r := range got {
				kinds = append(kinds, r.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) || got[0].Path != tc.path {
				t.Errorf("got %s, want kinds %q starting at %q", asJSON(got), tc.kinds, tc.path)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes: got %q, want %q", notes, tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %d: got %q, want it to hold %q", i, notes[i], n)
				}
			}
		})
	}
}

// TestVaultRequestsNoItems: ESO opens a store's client only for an item (Manager.Get), so a store
// no item reads from gets no login either.
func TestVaultRequestsNoItems(t *testing.T) {
	t.Parallel()
	es := dataItems(RemoteRef{Key: "a"})
	es.Spec.Data[0].SourceRef = &SourceRef{StoreRef: &StoreRef{Name: "other"}}
	if got, notes := VaultRequests(kvStore(addr("secret"), "v2"), es); got != nil || notes != nil {
		t.Errorf("got %s, notes %q; want nothing", asJSON(got), notes)
	}
}

// TestItemStores pins getProviderSecretData and toStoreGenSourceRef: which store each item reads.
func TestItemStores(t *testing.T) {
	t.Parallel()
	own := StoreKey{Kind: KindSecretStore, Namespace: "prod", Name: "vault"}
	cases := map[string]struct {
		es   func(*ExternalSecret)
		want []StoreKey
	}{
		"every item on spec.secretStoreRef": {es: func(*ExternalSecret) {}, want: []StoreKey{own}},
		"a data sourceRef.storeRef, a ClusterSecretStore": {
			es: func(es *ExternalSecret) {
				es.Spec.Data[0].SourceRef = &SourceRef{StoreRef: &StoreRef{Name: "shared", Kind: KindClusterSecretStore}}
			},
			want: []StoreKey{{Kind: KindClusterSecretStore, Name: "shared"}},
		},
		"a data sourceRef with only a generatorRef reads the store named \"\"": {
			es: func(es *ExternalSecret) {
				es.Spec.Data[0].SourceRef = &SourceRef{GeneratorRef: &struct {
					Kind string `json:"kind,omitempty"`
					Name string `json:"name,omitempty"`
				}{Kind: "Password", Name: "pw"}}
			},
			want: []StoreKey{{Kind: KindSecretStore, Namespace: "prod"}},
		},
		"dataFrom first, each store once": {
			es: func(es *ExternalSecret) {
				es.Spec.DataFrom = []ExternalSecretDataFrom{{Extract: &RemoteRef{Key: "x"}, SourceRef: &SourceRef{StoreRef: &StoreRef{Name: "b"}}},
					{Extract: &RemoteRef{Key: "y"}}}
			},
			want: []StoreKey{{Kind: KindSecretStore, Namespace: "prod", Name: "b"}, own},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			es := dataItems(RemoteRef{Key: "a"})
			tc.es(es)
			if got := ItemStores(es); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLoginAccount pins auth_kubernetes.go's getJwtString and auth.go's createServiceAccountToken.
func TestLoginAccount(t *testing.T) {
	t.Parallel()
	eso := ServiceAccountName{Namespace: "external-secrets", Name: "external-secrets"}
	cases := map[string]struct {
		kind  string
		k     VaultKubernetesAuth
		want  ServiceAccountName
		known bool
	}{
		"SecretStore serviceAccountRef: the ExternalSecret's (= the store's) namespace": {
			kind: KindSecretStore, k: VaultKubernetesAuth{ServiceAccountRef: &ServiceAccountRef{Name: "app"}},
			want: ServiceAccountName{Namespace: "prod", Name: "app"}, known: true,
		},
		"SecretStore serviceAccountRef.namespace is not honoured": {
			kind: KindSecretStore, k: VaultKubernetesAuth{ServiceAccountRef: &ServiceAccountRef{Name: "app", Namespace: addr("other")}},
			want: ServiceAccountName{Namespace: "prod", Name: "app"}, known: true,
		},
		"ClusterSecretStore serviceAccountRef.namespace": {
			kind: KindClusterSecretStore, k: VaultKubernetesAuth{ServiceAccountRef: &ServiceAccountRef{Name: "app", Namespace: addr("eso")}},
			want: ServiceAccountName{Namespace: "eso", Name: "app"}, known: true,
		},
		"ClusterSecretStore without namespace: the ExternalSecret's": {
			kind: KindClusterSecretStore, k: VaultKubernetesAuth{ServiceAccountRef: &ServiceAccountRef{Name: "app"}},
			want: ServiceAccountName{Namespace: "prod", Name: "app"}, known: true,
		},
		"no serviceAccountRef: ESO's own pod token": {
			kind: KindClusterSecretStore, k: VaultKubernetesAuth{}, want: eso, known: true,
		},
		"secretRef: a token whose account cannot be told": {
			kind: KindSecretStore, k: VaultKubernetesAuth{SecretRef: json.RawMessage(`{"name":"jwt"}`)}, known: false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := kvStore(nil, "")
			s.Kind = tc.kind
			s.Spec.Provider.Vault.Auth.Kubernetes = &tc.k
			got, known := LoginAccount(s, "prod", eso)
			if got != tc.want || known != tc.known {
				t.Errorf("got %v %v, want %v %v", got, known, tc.want, tc.known)
			}
		})
	}
}
