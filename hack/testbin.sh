#!/usr/bin/env bash
# testbin.sh builds the real servers credchain's tests and demo run against, from their Go modules,
# into a cache outside the repository keyed by tool and version. It is idempotent: a tool already in
# the cache is skipped, so a warm run takes well under a second. Tools are built one at a time
# because these machines have two cores and a cold kube-apiserver build alone takes ~15 minutes.
#
#   hack/testbin.sh [k8s|etcd|vault|eso|registry|helm|promcrds|promcheck|kyverno ...]
#                                      (no argument: all of them but kyverno, which only the peer benchmark needs)
#   hack/testbin.sh --print-env                         (prints the env vars tests read)
#
# Cache root: ${CREDCHAIN_TESTBIN:-$HOME/.cache/credchain/testbin}
set -euo pipefail

K8S_VERSION=1.37.2
ETCD_VERSION=3.6.8
VAULT_VERSION=1.21.4
ESO_VERSION=0.16.2
REGISTRY_VERSION=3.1.2
HELM_VERSION=3.22.0
CONTROLLER_GEN_VERSION=0.23.0
PROMETHEUS_OPERATOR_VERSION=0.95.2
PROMETHEUS_VERSION=0.316.0
# Kyverno is built only by `make peerbench` (hack/peerbench), never by the default list below.
KYVERNO_VERSION=1.19.1
# Bump when hack/testbin/promql changes: the cache is keyed by it (internal/testenv.PromCheckRevision).
PROMCHECK_REVISION=2

ROOT="${CREDCHAIN_TESTBIN:-$HOME/.cache/credchain/testbin}"
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/testbin"

# KUBEBUILDER_ASSETS must hold kube-apiserver, etcd and kubectl side by side (envtest looks there).
ASSETS="$ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

if [[ "${1:-}" == "--print-env" ]]; then
  echo "KUBEBUILDER_ASSETS=$ASSETS"
  echo "CREDCHAIN_VAULT=$ROOT/vault-$VAULT_VERSION/vault"
  echo "CREDCHAIN_ESO=$ROOT/eso-$ESO_VERSION/external-secrets"
  echo "CREDCHAIN_REGISTRY=$ROOT/registry-$REGISTRY_VERSION/registry"
  echo "CREDCHAIN_HELM=$ROOT/helm-$HELM_VERSION/helm"
  echo "CREDCHAIN_PROM_CRDS=$ROOT/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
  echo "CREDCHAIN_PROMCHECK=$ROOT/promcheck-$PROMETHEUS_VERSION-r$PROMCHECK_REVISION/promcheck"
  echo "CREDCHAIN_KYVERNO=$ROOT/kyverno-$KYVERNO_VERSION/kyverno"
  exit 0
fi

log() { printf '[testbin %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build_one <dir> <out-binary> <description> <go build args...>
# Builds into a temp file and renames, so an interrupted build never leaves a half binary in the cache.
build_one() {
  local dir="$1" out="$2" what="$3"; shift 3
  if [[ -x "$out" ]]; then log "$what: cached at $out"; return 0; fi
  mkdir -p "$(dirname "$out")"
  log "$what: building (cold builds are slow on 2 cores; progress below)"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -o "$out.tmp" "$@")
  mv "$out.tmp" "$out"
  log "$what: built in $((SECONDS - start))s -> $out"
}

k8s() {
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
  build_one "$HACK/k8s" "$ASSETS/kube-apiserver" "kube-apiserver v$K8S_VERSION (~17-21 min cold)" \
    -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver
  build_one "$HACK/k8s" "$ASSETS/kubectl" "kubectl v$K8S_VERSION (~1 min after kube-apiserver)" \
    -ldflags "$ldflags" k8s.io/kubernetes/cmd/kubectl
}

etcd() {
  build_one "$HACK/etcd" "$ASSETS/etcd" "etcd v$ETCD_VERSION (~2 min cold)" -ldflags "-s -w" .
}

vault() {
  local out="$ROOT/vault-$VAULT_VERSION/vault"
  if [[ -x "$out" ]]; then log "vault v$VAULT_VERSION: cached at $out"; return 0; fi
  # Vault builds against its in-repo sdk/, which the proxy does not serve; sdk v0.21.0 is the nearest
  # and differs in three call sites. Vendor into a scratch copy and patch those three.
  local work; work="$(mktemp -d)"
  cp "$HACK/vault/go.mod" "$HACK/vault/go.sum" "$HACK/vault/main.go" "$work/"
  log "vault v$VAULT_VERSION: vendoring"
  (cd "$work" && go mod vendor)
  local v="$work/vendor/github.com/hashicorp/vault"
  chmod -R u+w "$v"
  sed -i 's/func (i \*IdentityStore) activateDeduplication(ctx context.Context, req \*logical.Request) error/func (i *IdentityStore) activateDeduplication(ctx context.Context, req *logical.Request, _ string) error/' \
    "$v/vault/identity_store_util.go"
  sed -i 's/ActivationFunc(ctx, nil)/ActivationFunc(ctx, nil, "")/' "$v/vault/logical_system_activation_flags.go"
  # sdk v0.21.0's RestorePolicy returns only an error; the restored key keeps the requested name.
  sed -i 's/restoredKeyName, err := b.lm.RestorePolicy(/restoredKeyName := keyName\n\terr := b.lm.RestorePolicy(/' \
    "$v/builtin/logical/transit/path_restore.go"
  for f in vault/identity_store_util.go vault/logical_system_activation_flags.go builtin/logical/transit/path_restore.go; do
    grep -q -e '_ string) error' -e 'ActivationFunc(ctx, nil, "")' -e 'restoredKeyName := keyName' "$v/$f" \
      || { log "vault: patch did not apply to $f"; exit 1; }
  done
  build_one "$work" "$out" "vault v$VAULT_VERSION (~14-23 min cold)" -mod=vendor -ldflags "-s -w" .
  rm -rf "$work"
}

eso() {
  build_one "$HACK/eso" "$ROOT/eso-$ESO_VERSION/external-secrets" "external-secrets v$ESO_VERSION (~9 min cold)" -ldflags "-s -w" .
}

registry() {
  build_one "$HACK/registry" "$ROOT/registry-$REGISTRY_VERSION/registry" "registry v$REGISTRY_VERSION (~1 min cold)" -ldflags "-s -w" .
}

# helm: the version ldflags of helm's own Makefile. Without the chartutil ones `helm template` assumes
# Kubernetes v1.20 and refuses charts with a newer kubeVersion; like helm's release builds, they are
# client-go's version with the major bumped (client-go v0.37 = Kubernetes 1.37).
helm() {
  local cg; cg="$(cd "$HACK/helm" && go list -f '{{.Version}}' -m k8s.io/client-go)"
  local minor; minor="$(echo "$cg" | cut -d. -f2)"
  local x="-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    x="$x -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  build_one "$HACK/helm" "$ROOT/helm-$HELM_VERSION/helm" "helm v$HELM_VERSION (~4-10 min cold)" \
    -ldflags "-s -w $x" helm.sh/helm/v3/cmd/helm
}

# promcrds generates prometheus-operator's monitoring.coreos.com CRDs (PrometheusRule, ServiceMonitor, ...)
# with controller-gen from the API types module: the proxy serves the types, not the repository that
# ships the YAML. Generated into a temp dir and renamed, like build_one's binaries.
promcrds() {
  local gen="$ROOT/controller-gen-$CONTROLLER_GEN_VERSION/controller-gen"
  local out="$ROOT/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
  build_one "$HACK/controller-gen" "$gen" "controller-gen v$CONTROLLER_GEN_VERSION (~3 min cold)" \
    -ldflags "-s -w" sigs.k8s.io/controller-tools/cmd/controller-gen
  if [[ -d "$out" ]]; then log "prometheus-operator v$PROMETHEUS_OPERATOR_VERSION CRDs: cached at $out"; return 0; fi
  log "prometheus-operator v$PROMETHEUS_OPERATOR_VERSION CRDs: generating"
  rm -rf "$out.tmp"
  (cd "$HACK/controller-gen" && "$gen" crd:crdVersions=v1 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir="$out.tmp")
  mv "$out.tmp" "$out"
  log "prometheus-operator v$PROMETHEUS_OPERATOR_VERSION CRDs: generated -> $out"
}

# promcheck: PromQL and rule-file checks with Prometheus' own parser, and alert evaluation with its
# PromQL engine (hack/testbin/promql).
promcheck() {
  build_one "$HACK/promql" "$ROOT/promcheck-$PROMETHEUS_VERSION-r$PROMCHECK_REVISION/promcheck" "promcheck r$PROMCHECK_REVISION (prometheus v$PROMETHEUS_VERSION parser and PromQL engine, ~3 min cold)" -ldflags "-s -w" .
}

# kyverno: Kyverno's admission controller (hack/testbin/kyverno), the peer the benchmark in
# hack/peerbench measures credchain against. Not in the default list: ~8 min and 263 MB that CI's
# budget does not need.
kyverno() {
  build_one "$HACK/kyverno" "$ROOT/kyverno-$KYVERNO_VERSION/kyverno" "kyverno v$KYVERNO_VERSION (~8 min cold, 263 MB)" \
    -ldflags "-s -w" github.com/kyverno/kyverno/cmd/kyverno
}

tools=("$@")
[[ ${#tools[@]} -eq 0 ]] && tools=(etcd k8s vault eso registry helm promcrds promcheck)
for t in "${tools[@]}"; do
  case "$t" in
    k8s|etcd|vault|eso|registry|helm|promcrds|promcheck|kyverno) "$t" ;;
    *) log "unknown tool $t (want k8s, etcd, vault, eso, registry, helm, promcrds, promcheck, kyverno)"; exit 2 ;;
  esac
done
log "done: $(printf '%s ' "${tools[@]}")"
