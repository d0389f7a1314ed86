// Package metrics holds what every credchain component does with Prometheus the same way.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrExisting adds c to reg, or returns the collector already registered under the same
// name: a second component started in one process (as in tests) shares the series instead of
// panicking. Any other registration error is a bug in credchain's metric definitions.
func RegisterOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("internal error: registering metrics: %v", err))
	}
	return c
}
