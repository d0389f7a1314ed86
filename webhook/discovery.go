package webhook

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/credchain/credchain/internal/chain"
)

// DiscoverESOVersion returns the most preferred ExternalSecret API version the server serves. Only
// when every version is answered "not found" is ESO missing (ErrESONotServed); any other failure
// (the API server unreachable, the webhook's credentials refused) is returned as it is, so the
// operator fixes the connection instead of reinstalling ESO's CRDs.
func DiscoverESOVersion(cfg *rest.Config) (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("discovering the ExternalSecret API: %w", err)
	}
	var errs []error
	for _, v := range chain.ESOVersions {
		gv := chain.ESOGroup + "/" + v
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("discovering %s at %s: %w", gv, cfg.Host, err))
			continue
		}
		for _, r := range list.APIResources {
			if r.Name == "externalsecrets" {
				return v, nil
			}
		}
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return "", ErrESONotServed
}
