package chain

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestStoreDecodeAndCopy(t *testing.T) {
	var s SecretStore
	raw := `{"metadata":{"name":"v","namespace":"team"},"spec":{"provider":{"vault":{"server":"https://vault:8200","namespace":"team-a",
	  "auth":{"kubernetes":{"role":"r","serviceAccountRef":{"name":"sa","audiences":["vault"]}}}}}}}`
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	v := s.Spec.Provider.Vault
	if v == nil || v.KVVersion() != VaultKVv2 || LoginMethod(StoreFromSecretStore(&s)) != "kubernetes" || v.Auth.Kubernetes.Mount() != "kubernetes" || *v.Namespace != "team-a" {
		t.Fatalf("decoded %+v", v)
	}
	cp := s.DeepCopy()
	*cp.Spec.Provider.Vault.Namespace = "changed"
	cp.Spec.Provider.Vault.Auth.Kubernetes.ServiceAccountRef.Audiences[0] = "changed"
	if *v.Namespace != "team-a" || v.Auth.Kubernetes.ServiceAccountRef.Audiences[0] != "vault" {
		t.Error("DeepCopy shares memory with the original")
	}
	var other SecretStore
	if err := json.Unmarshal([]byte(`{"spec":{"provider":{"aws":{"service":"SecretsManager"},"vault":null}}}`), &other); err != nil {
		t.Fatal(err)
	}
	if other.Spec.Provider.Vault != nil || !slices.Equal(other.Spec.Provider.Names, []string{"aws"}) {
		t.Errorf("provider = %+v", other.Spec.Provider)
	}
	both := StoreFromSecretStore(s.DeepCopy())
	both.Spec.Provider.Vault.Auth.TokenSecretRef = json.RawMessage(`{"name":"t"}`)
	if m := LoginMethod(both); m != "tokenSecretRef" {
		t.Errorf("LoginMethod = %q; ESO tries a token before Kubernetes auth", m)
	}
	if _, ok := both.KubernetesRole(); ok {
		t.Error("a store that logs in with a token has a Kubernetes role")
	}
}
