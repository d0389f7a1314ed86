package webhook

import "errors"

var (
	// errNotSynced answers reviews that arrive before the informers have synced. It is an
	// internal error (500): the request is fine, we are not ready to judge it.
	errNotSynced = errors.New("internal error: credchain's informer caches have not synced yet; retry shortly")
	// errMissingNamespace answers a review of a namespaced kind without a namespace.
	errMissingNamespace = errors.New("admission request has no namespace")
	// ErrESONotServed is returned at start when the API server serves no ExternalSecret version
	// credchain understands.
	ErrESONotServed = errors.New("the API server serves no ExternalSecret API (external-secrets.io/v1 or v1beta1); install External Secrets Operator's CRDs first")
)
