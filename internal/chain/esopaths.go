package chain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// This file is what ESO v0.16.2's Vault provider asks Vault for an ExternalSecret, written from
// reading pkg/provider/vault in the v0.16.2 tree (client_get.go's buildPath, buildMetadataPath,
// readSecret, readSecretMetadata; client_get_all_secrets.go's GetAllSecrets and listSecrets;
// auth.go's setAuth and checkToken; auth_kubernetes.go; provider.go's initClient and
// isReferentSpec; validate.go's Validate) and the controllers that call it
// (pkg/controllers/externalsecret/externalsecret_controller_secret.go's getProviderSecretData,
// pkg/controllers/secretstore/common.go's validateStore, client_manager.go's Get). The quirks are
// kept on purpose: `check` must predict what ESO does, not what it should do.
//
// The token check. ESO calls checkToken (auth/token/lookup-self, a read) in three places:
//   - validate.go, (*client).Validate: the SecretStore controller's validateStore calls it after
//     logging in, every time it reconciles a store, except for a ClusterSecretStore whose auth is
//     "referent" (isReferentSpec: for Kubernetes auth, a serviceAccountRef or secretRef without a
//     namespace — the namespace is only known per ExternalSecret). A failure sets the store's
//     Ready=False, and with the ExternalSecret controller's flood gate (--enable-flood-gate,
//     default true; client_manager.go's Get and assertStoreIsUsable) every ExternalSecret on the
//     store then fails with `SecretStore "x" is not ready`, whatever its own paths.
//   - auth.go, setAuth: only when the client already holds a token, which a fresh client does
//     not unless the experimental token cache (--experimental-enable-vault-token-cache) is on.
//   - client.go, Close → revokeTokenIfValid: after every reconcile, before revoke-self; the
//     controllers ignore Close's error (`_ = mgr.Close(ctx)`), so a failure there breaks nothing.
// So the lookup-self that matters is the store validation's: VaultRequests lists it, marked
// RequestTokenLookup, for every store that is validated.

// Kinds of VaultRequest.
const (
	// RequestLogin is the Kubernetes auth login, auth/<mount>/login. Vault asks no policy for
	// it; it needs the role to exist and to bind the ServiceAccount whose token ESO sends.
	RequestLogin = "login"
	// RequestTokenLookup is the store validation's auth/token/lookup-self: when it fails, the
	// store and every ExternalSecret on it fail.
	RequestTokenLookup = "token-lookup"
	// RequestSecret is a read or list of the KV engine for one item of the ExternalSecret.
	RequestSecret = "secret"
)

// VaultRequest is one request ESO v0.16.2 makes to Vault for an ExternalSecret, in the order ESO
// makes them: the login, the store's token lookup, then spec.dataFrom and spec.data in order.
type VaultRequest struct {
	Kind string
	// Path is the Vault API path, without the /v1/ prefix or a query string, as ESO builds it.
	Path string
	// Capability is what Vault's ACL must grant on Path: "read" or "list"; "" for the login.
	Capability string
	// Why is the spec field the request comes from, with its value, for the person reading the
	// report: `spec.data[0].remoteRef.key "order-service/regcred"`.
	Why string
	// Params are the request parameters ESO sends ("version" for ?version=N): a rule's
	// allowed_parameters or denied_parameters may refuse them though the capability is granted.
	Params []string
	// Fails is set when ESO fails the item itself, before or instead of asking Vault (a metadata
	// fetch on KV v1, say); Path is then empty. It is ESO's reason, in our words.
	Fails string
}

// Capabilities of VaultRequest.Capability.
const (
	CapabilityRead = "read"
	CapabilityList = "list"
)

// VaultRequests returns the requests ESO makes to the Vault store for es's items that read from
// it (their own sourceRef.storeRef's, else spec.secretStoreRef's: see ItemStores), and notes on
// what it cannot model. It returns nothing when no item reads from store: ESO then never opens
// a client for it, so does not log in either. A store of another provider returns nothing.
//
// The login and the token lookup are listed only for Kubernetes auth (other methods: a note);
// the caller checks the login against the role, and the rest against the role's policies.
func VaultRequests(store *Store, es *ExternalSecret) ([]VaultRequest, []string) {
	v := store.Vault()
	if v == nil {
		return nil, nil
	}
	items, notes := esoItems(es)
	if store.Key() != StoreKeyOf(es.Namespace, es.Spec.SecretStoreRef) {
		notes = nil // the generators' notes go with the ExternalSecret's own store, once
	}
	kv := kvPaths{mount: v.Path, version: v.KVVersion()}
	notes = append(notes, kv.mountNotes()...)
	var reqs []VaultRequest
	for _, it := range items {
		if it.store != store.Key() {
			continue
		}
		switch {
		case it.find != nil:
			r, n := kv.find(it.field, it.find)
			reqs, notes = append(reqs, r), append(notes, n...)
		default:
			r, n := kv.secret(it.field, it.remote)
			reqs, notes = append(reqs, r), append(notes, n...)
		}
	}
	if len(reqs) == 0 {
		return nil, notes
	}
	auth, authNotes := authRequests(store)
	return append(auth, reqs...), append(authNotes, notes...)
}

// authRequests are the login and the store validation's token lookup (see the file comment).
func authRequests(store *Store) ([]VaultRequest, []string) {
	method := LoginMethod(store)
	if method != "kubernetes" {
		if method == "" {
			return nil, []string{"spec.provider.vault.auth: none set, ESO sends no token of its own (the login is not modelled)"}
		}
		return nil, []string{fmt.Sprintf("spec.provider.vault.auth.%s: ESO logs in with %s, which is not modelled", method, method)}
	}
	k := store.Vault().Auth.Kubernetes
	mountPath := k.MountPath
	if mountPath == "" {
		mountPath = "kubernetes" // the CRD's default
	}
	var notes []string
	if strings.Trim(mountPath, "/") != mountPath {
		notes = append(notes, fmt.Sprintf("spec.provider.vault.auth.kubernetes.mountPath %q: ESO logs in at auth/%s/login, slashes as written", mountPath, mountPath))
	}
	reqs := []VaultRequest{{Kind: RequestLogin, Path: "auth/" + mountPath + "/login",
		Why: "spec.provider.vault.auth.kubernetes: login as role " + strconv.Quote(k.Role)}}
	if !referentKubernetesAuth(store) {
		reqs = append(reqs, VaultRequest{Kind: RequestTokenLookup, Path: "auth/token/lookup-self", Capability: CapabilityRead,
			Why: store.Kind + " " + storeName(store) +
				" validation: token lookup-self (if it fails, the store is not Ready and ESO fails every ExternalSecret on it)"})
	}
	return reqs, notes
}

// LoginMethod is the auth method ESO v0.16.2 logs in with: the first set in setAuth's order
// (tokenSecretRef, appRole, kubernetes, ldap, userPass, jwt, cert, iam), "" when none is. That
// order, not VaultAuth.Method's, decides when a store sets several.
func LoginMethod(store *Store) string {
	v := store.Vault()
	if v == nil || v.Auth == nil {
		return ""
	}
	a := v.Auth
	for _, m := range []struct {
		name string
		set  bool
	}{{"tokenSecretRef", isSet(a.TokenSecretRef)}, {"appRole", isSet(a.AppRole)}, {"kubernetes", a.Kubernetes != nil},
		{"ldap", isSet(a.Ldap)}, {"userPass", isSet(a.UserPass)}, {"jwt", isSet(a.Jwt)}, {"cert", isSet(a.Cert)}, {"iam", isSet(a.Iam)}} {
		if m.set {
			return m.name
		}
	}
	return ""
}

func isSet(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// referentKubernetesAuth is isReferentSpec (provider.go) for a Kubernetes auth store: a
// ClusterSecretStore whose serviceAccountRef or secretRef has no namespace logs in per
// ExternalSecret namespace, so the SecretStore controller neither logs in nor validates it.
func referentKubernetesAuth(store *Store) bool {
	if store.Kind != KindClusterSecretStore {
		return false
	}
	k := store.Vault().Auth.Kubernetes
	if k.ServiceAccountRef != nil && k.ServiceAccountRef.Namespace == nil {
		return true
	}
	if isSet(k.SecretRef) {
		var ref struct {
			Namespace *string `json:"namespace"`
		}
		return json.Unmarshal(k.SecretRef, &ref) == nil && ref.Namespace == nil
	}
	return false
}

// ServiceAccountName names a Kubernetes ServiceAccount.
type ServiceAccountName struct{ Namespace, Name string }

func (s ServiceAccountName) String() string { return s.Namespace + "/" + s.Name }

// LoginAccount is the ServiceAccount whose token ESO v0.16.2 sends to a Kubernetes auth login
// for an ExternalSecret in esNamespace (auth_kubernetes.go's getJwtString and auth.go's
// createServiceAccountToken): serviceAccountRef.name, in serviceAccountRef.namespace for a
// ClusterSecretStore that sets it, else in the ExternalSecret's namespace (a SecretStore's is
// its own: ESO's webhook refuses another); without a serviceAccountRef, the token of ESO's own
// pod, eso. known is false when the token comes from a Secret (auth.kubernetes.secretRef): whose
// it is cannot be told from the manifests.
func LoginAccount(store *Store, esNamespace string, eso ServiceAccountName) (sa ServiceAccountName, known bool) {
	k := store.Vault().Auth.Kubernetes
	switch {
	case k.ServiceAccountRef != nil:
		ns := esNamespace
		if store.Kind == KindClusterSecretStore && k.ServiceAccountRef.Namespace != nil {
			ns = *k.ServiceAccountRef.Namespace
		}
		return ServiceAccountName{Namespace: ns, Name: k.ServiceAccountRef.Name}, true
	case isSet(k.SecretRef):
		return ServiceAccountName{}, false
	}
	return eso, true
}

// ItemStores returns the stores ESO v0.16.2 reads es's items from, each once, in ESO's order
// (dataFrom, then data). An item's store is its sourceRef.storeRef when it sets one, else
// spec.secretStoreRef. For spec.data ESO takes sourceRef.storeRef whenever sourceRef is set,
// empty or not (a data item's sourceRef.generatorRef is not implemented: ESO reads the store
// named "" and fails). A generator item reads no store.
func ItemStores(es *ExternalSecret) []StoreKey {
	items, _ := esoItems(es)
	var out []StoreKey
	seen := map[StoreKey]bool{}
	for _, it := range items {
		if !seen[it.store] {
			seen[it.store] = true
			out = append(out, it.store)
		}
	}
	return out
}

// ItemsOn returns the spec fields of es's items that read from store k ("spec.data[0]", ...),
// for reports naming which items a missing store fails.
func ItemsOn(es *ExternalSecret, k StoreKey) []string {
	items, _ := esoItems(es)
	var out []string
	for _, it := range items {
		if it.store == k {
			out = append(out, it.field)
		}
	}
	return out
}

// item is one spec.dataFrom or spec.data entry that ESO fetches from a store.
type item struct {
	field  string // "spec.dataFrom[0]", "spec.data[1]"
	store  StoreKey
	remote *RemoteRef // data[].remoteRef or dataFrom[].extract
	find   *Find
}

// esoItems lists es's store items in getProviderSecretData's order, and notes for the rest.
func esoItems(es *ExternalSecret) ([]item, []string) {
	var items []item
	var notes []string
	for i := range es.Spec.DataFrom {
		d := &es.Spec.DataFrom[i]
		field := "spec.dataFrom[" + strconv.Itoa(i) + "]"
		ref := es.Spec.SecretStoreRef
		if d.SourceRef != nil && d.SourceRef.StoreRef != nil {
			ref = *d.SourceRef.StoreRef
		}
		switch {
		case d.Find != nil:
			items = append(items, item{field: field, store: StoreKeyOf(es.Namespace, ref), find: d.Find})
		case d.Extract != nil:
			items = append(items, item{field: field, store: StoreKeyOf(es.Namespace, ref), remote: d.Extract})
		case d.SourceRef != nil && d.SourceRef.GeneratorRef != nil:
			notes = append(notes, fmt.Sprintf("%s.sourceRef.generatorRef: %s %q is a generator, not checked",
				field, d.SourceRef.GeneratorRef.Kind, d.SourceRef.GeneratorRef.Name))
		}
	}
	for i := range es.Spec.Data {
		d := &es.Spec.Data[i]
		field := "spec.data[" + strconv.Itoa(i) + "]"
		ref := es.Spec.SecretStoreRef
		if d.SourceRef != nil {
			ref = StoreRef{}
			if d.SourceRef.StoreRef != nil {
				ref = *d.SourceRef.StoreRef
			}
			if d.SourceRef.GeneratorRef != nil {
				notes = append(notes, fmt.Sprintf("%s.sourceRef.generatorRef: ESO v0.16.2 does not implement generators in spec.data; it reads the store sourceRef.storeRef names (%q)", field, ref.Name))
			}
		}
		items = append(items, item{field: field, store: StoreKeyOf(es.Namespace, ref), remote: &es.Spec.Data[i].RemoteRef})
	}
	return items, notes
}

func storeName(s *Store) string {
	if s.Namespace == "" {
		return s.Name
	}
	return s.Namespace + "/" + s.Name
}

// kvPaths builds KV paths as ESO's client does, for one store's spec.provider.vault path and
// version (with the CRD's default, v2, applied).
type kvPaths struct {
	mount   *string
	version string
}

// mountNotes flag a spec.provider.vault.path ESO joins into odd paths.
func (p kvPaths) mountNotes() []string {
	if p.mount == nil || strings.Trim(*p.mount, "/") == *p.mount && *p.mount != "" {
		return nil
	}
	return []string{fmt.Sprintf("spec.provider.vault.path %q: ESO joins it to keys as written (%q)", *p.mount, p.data("key"))}
}

// secret is the request for a data item or a dataFrom extract: readSecret (the data path,
// with ?version=N) or, with metadataPolicy Fetch, readSecretMetadata (the metadata path).
func (p kvPaths) secret(field string, r *RemoteRef) (VaultRequest, []string) {
	what := "remoteRef"
	if strings.HasPrefix(field, "spec.dataFrom") {
		what = "extract"
	}
	// Concatenation, not Sprintf: this runs for every item of every ExternalSecret.
	req := VaultRequest{Kind: RequestSecret, Capability: CapabilityRead,
		Why: field + "." + what + ".key " + strconv.Quote(r.Key)}
	if r.MetadataPolicy == "Fetch" {
		req.Why += " (metadataPolicy Fetch)"
		if p.version == VaultKVv1 {
			req.Fails = "metadataPolicy Fetch on a KV v1 store: ESO refuses it (cannot perform metadata fetch operations with kv version v1)"
			return req, nil
		}
		path, fails, notes := p.metadata(r.Key)
		req.Path, req.Fails = path, fails
		return req, notes
	}
	req.Path = p.data(r.Key)
	if r.Version != "" {
		req.Params = []string{"version"}
		req.Why += " version " + strconv.Quote(r.Version)
	}
	return req, nil
}

// data is buildPath. With a mount (spec.provider.vault.path): a key starting with "<mount>/" is
// first cut of it (and on v2 of a "data/" after it) — so a secret whose own name starts with the
// mount's cannot be reached — then "<mount>/" and on v2 "data/" are put in front. Without one: on
// v2 a key holding no "/data/" gets "data" after its first segment, the mount; else it is used
// as is.
func (p kvPaths) data(key string) string {
	v2 := p.version == VaultKVv2
	if p.mount != nil {
		out := key
		if cut := *p.mount + "/"; strings.HasPrefix(out, cut) {
			out = out[len(cut):]
			if v2 && strings.HasPrefix(out, "data/") {
				out = out[len("data/"):]
			}
		}
		if v2 {
			return *p.mount + "/data/" + out
		}
		return *p.mount + "/" + out
	}
	if v2 && !strings.Contains(key, "/data/") {
		mount, rest, ok := strings.Cut(key, "/")
		if !ok {
			return mount + "/data"
		}
		return mount + "/data/" + rest
	}
	return key
}

// metadata is buildMetadataPath for KV v2: "<mount>/metadata/<path>" with a mount (the mount is
// not cut from the path here, unlike data); without one the path must hold "data" somewhere,
// and its first "/data/" becomes "/metadata/" (a path holding "data" but no "/data/" is used as
// is).
func (p kvPaths) metadata(path string) (string, string, []string) {
	if p.mount != nil {
		return *p.mount + "/metadata/" + path, "", nil
	}
	if !strings.Contains(path, "data") {
		return "", fmt.Sprintf("no spec.provider.vault.path and %q holds no \"data\": ESO refuses it (provided Path isn't a valid kv v2 path)", path), nil
	}
	if !strings.Contains(path, "/data/") {
		return path, "", []string{fmt.Sprintf("%q holds \"data\" but no \"/data/\" segment: ESO uses it as the metadata path unchanged", path)}
	}
	return strings.Replace(path, "/data/", "/metadata/", 1), "", nil
}

// find is GetAllSecrets' first request: a LIST of the metadata directory (v2) or of the path
// (v1), from which ESO lists subdirectories and reads each secret found. Those later requests
// depend on what Vault holds, so they are noted, not modelled.
func (p kvPaths) find(field string, f *Find) (VaultRequest, []string) {
	search := ""
	req := VaultRequest{Kind: RequestSecret, Capability: CapabilityList, Why: field + ".find"}
	if f.Path != nil {
		search = *f.Path + "/"
		req.Why = fmt.Sprintf("%s.find.path %q", field, *f.Path)
	}
	switch {
	case p.version == VaultKVv1 && f.Tags != nil:
		req.Fails = "find by tags on a KV v1 store: ESO does not support it (cannot perform find by tag operations with kv version v1)"
		return req, nil
	case p.version == VaultKVv1 && p.mount == nil:
		req.Fails = "find on a KV v1 store without spec.provider.vault.path: ESO v0.16.2 dereferences the unset path and the reconcile fails"
		return req, nil
	case p.version == VaultKVv1:
		req.Path = *p.mount + "/" + search
	default:
		path, fails, notes := p.metadata(search)
		req.Path, req.Fails = path, fails
		if fails != "" {
			return req, notes
		}
		return req, append(notes, p.findNote(field, f, search))
	}
	return req, []string{p.findNote(field, f, search)}
}

func (p kvPaths) findNote(field string, f *Find, search string) string {
	what := "read"
	if f.Name == nil && p.version == VaultKVv2 {
		what = "read, with each one's metadata for the tags,"
	}
	return fmt.Sprintf("%s.find: ESO also lists the subdirectories and must %s every secret found under %q: those paths depend on what Vault holds, and are not checked",
		field, what, p.data(search))
}
