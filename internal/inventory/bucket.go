package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the bucket's name unless --inventory-bucket says otherwise.
const DefaultBucket = "credchain-inventory"

// EnsureBucket opens the inventory bucket name, creating it when it does not exist and updating
// it when its settings differ: TTL as the max age of a value (so a vanished cluster's key ages out
// server-side too), History 1 (only the current inventory matters), replicas copies. An existing
// bucket with these settings is only looked up, so a cluster's NATS user needs no right to create
// or update it when the platform team created it (docs/inventory.md lists both sets of permissions).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{Bucket: name, Description: "credchain: each cluster's part of the chain, by cluster name (docs/inventory.md)",
		History: 1, TTL: ttl, Replicas: replicas, Storage: jetstream.FileStorage}
	kv, err := js.KeyValue(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // another cluster created it first
			kv, err = js.KeyValue(ctx, name)
		}
		if err != nil {
			return nil, fmt.Errorf("creating inventory bucket %s: %w", name, err)
		}
		return kv, nil
	case err != nil:
		return nil, fmt.Errorf("opening inventory bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading inventory bucket %s: %w", name, err)
	}
	replicasNow := 1
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		replicasNow = s.StreamInfo().Config.Replicas
	}
	if st.TTL() == ttl && st.History() == 1 && replicasNow == replicas {
		return kv, nil
	}
	if kv, err = js.UpdateKeyValue(ctx, cfg); err != nil {
		return nil, fmt.Errorf("updating inventory bucket %s to ttl %s, %d replicas: %w", name, ttl, replicas, err)
	}
	return kv, nil
}
