package webhook

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	toolscache "k8s.io/client-go/tools/cache"
)

// WatchHealth makes a broken informer watch visible. After a watch or list failure (ESO upgraded
// past v1beta1, its CRD reinstalled, RBAC revoked) client-go keeps serving the last cache while it
// retries, so decisions would be made from a frozen view while /readyz stays green. WatchHealth
// records each failure from the reflector's error handler and counts the watch as recovered as soon
// as its reflector has listed or watched again (its last synced resource version moved).
//
// A watch that failed only briefly (a routine "too old resource version" expiry is followed by a
// relist within a second) is not reported: only one failing for longer than Grace.
type WatchHealth struct {
	// Grace is how long a watch may stay failed before readiness fails. Defaults to 30s.
	Grace time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time

	mu      sync.Mutex
	failing map[string]watchFailure // by the reflector's type description; guarded by mu
}

type watchFailure struct {
	r     *toolscache.Reflector
	rv    string // the reflector's last synced resource version when it failed
	since time.Time
	err   string
}

// OnError is the informers' watch error handler: it keeps client-go's logging and records the
// failure.
func (w *WatchHealth) OnError(ctx context.Context, r *toolscache.Reflector, err error) {
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing == nil {
		w.failing = map[string]watchFailure{}
	}
	key := r.TypeDescription()
	f, ok := w.failing[key]
	if !ok || f.rv != r.LastSyncResourceVersion() {
		f = watchFailure{r: r, rv: r.LastSyncResourceVersion(), since: w.now()}
	}
	f.err = oneLine(err.Error(), 300)
	w.failing[key] = f
}

func (w *WatchHealth) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Failing returns the watches failing for longer than Grace, as "type: error (since ...)", sorted;
// recovered ones are forgotten.
func (w *WatchHealth) Failing() []string {
	grace := w.Grace
	if grace == 0 {
		grace = 30 * time.Second
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for key, f := range w.failing {
		if f.r.LastSyncResourceVersion() != f.rv {
			delete(w.failing, key) // listed or watched since: recovered
			continue
		}
		if w.now().Sub(f.since) >= grace {
			out = append(out, fmt.Sprintf("%s: %s (failing since %s)", key, f.err, f.since.UTC().Format(time.RFC3339)))
		}
	}
	sort.Strings(out)
	return out
}

// Check is a readiness check: it fails while a watch has been failing for longer than Grace.
func (w *WatchHealth) Check() error {
	if f := w.Failing(); len(f) > 0 {
		return fmt.Errorf("informer watch failing, decisions would come from a stale cache: %v", f)
	}
	return nil
}

// Metric is credchain_webhook_watches_failing: the number of informer watches failing for longer
// than Grace (the WebhookWatchFailing alert fires on it).
func (w *WatchHealth) Metric() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "credchain_webhook_watches_failing",
		Help: "Informer watches (ExternalSecrets, ServiceAccounts, Namespaces, Events) failing for longer than the grace period; decisions then come from a stale cache.",
	}, func() float64 { return float64(len(w.Failing())) })
}
