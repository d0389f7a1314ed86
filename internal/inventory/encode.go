package inventory

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// DefaultMaxBytes is NATS's default max_payload (1 MiB): the largest value a put can carry unless
// the servers are configured otherwise (WithMaxBytes).
const DefaultMaxBytes = 1 << 20

// DefaultMaxDecodedBytes bounds what the Reader inflates one value to: a value is at most a few
// MiB of JSON (10,000 ExternalSecrets are about 3 MiB), and a gzip bomb of 1 MiB would otherwise
// inflate to a gigabyte.
const DefaultMaxDecodedBytes = 64 << 20

// MaxClusterBytes is the longest cluster name, as events cap names (events.MaxNameBytes).
const MaxClusterBytes = 253

// Errors of encoding and decoding, wrapped with the cluster and the sizes.
var (
	// ErrInvalidCluster: the name is not usable as a KV key (and a subject token of its own).
	ErrInvalidCluster = errors.New("invalid cluster name")
	// ErrTooLarge: the encoded inventory exceeds the payload NATS accepts.
	ErrTooLarge = errors.New("inventory too large")
	// ErrUnsupportedVersion: a value of a version this reader does not know.
	ErrUnsupportedVersion = errors.New("unsupported inventory version")
	// ErrUndecodable: a value that is not gzip-compressed inventory JSON.
	ErrUndecodable = errors.New("undecodable inventory")
	// ErrClusterMismatch: a value whose cluster is not the key it is stored under.
	ErrClusterMismatch = errors.New("inventory names another cluster than its key")
)

// clusterRe is a NATS KV key without '/': a key may hold '/' and '.', but a cluster name is one
// token of $KV.<bucket>.<cluster> so that a permission on exactly that subject confines it.
var clusterRe = regexp.MustCompile(`^[-_=.a-zA-Z0-9]+$`)

// ValidClusterName reports why name cannot be a cluster's key, nil when it can: KV key characters
// ([-_=.a-zA-Z0-9]), no leading, trailing or doubled dot, at most MaxClusterBytes.
func ValidClusterName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidCluster)
	case len(name) > MaxClusterBytes:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCluster, len(name), MaxClusterBytes)
	case !clusterRe.MatchString(name):
		return fmt.Errorf("%w %q: only letters, digits, '-', '_', '=' and '.'", ErrInvalidCluster, name)
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return fmt.Errorf("%w %q: no leading, trailing or doubled '.'", ErrInvalidCluster, name)
	}
	return nil
}

// Encode is inv as its versioned JSON, gzip-compressed; ErrTooLarge (naming the sizes and what
// the inventory holds) when the result exceeds maxBytes, which must be the max payload of the NATS
// servers: a put of it would be refused every time.
func Encode(inv *Inventory, maxBytes int) ([]byte, error) {
	raw, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("internal error: encoding inventory: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("internal error: compressing inventory: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("internal error: compressing inventory: %w", err)
	}
	if buf.Len() > maxBytes {
		return nil, fmt.Errorf("%w: cluster %q's inventory (%d stores, %d ExternalSecrets) is %d bytes gzip-compressed (%d of JSON), over the %d NATS accepts (max_payload); raise max_payload on the NATS servers, or split the cluster across more --cluster names (one webhook install per name)",
			ErrTooLarge, inv.Cluster, len(inv.Stores), inv.externalSecrets(), buf.Len(), len(raw), maxBytes)
	}
	return buf.Bytes(), nil
}

// Decode is the inventory stored under key: gzip-compressed JSON inflating to at most maxDecoded
// bytes, of a version up to Version, naming key as its cluster. The value comes from the bucket,
// which every cluster's user may be able to write to: nothing in it is trusted beyond its shape.
func Decode(key string, data []byte, maxDecoded int) (*Inventory, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w under key %q: %w", ErrUndecodable, key, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, int64(maxDecoded)+1))
	if err != nil {
		return nil, fmt.Errorf("%w under key %q: %w", ErrUndecodable, key, err)
	}
	if len(raw) > maxDecoded {
		return nil, fmt.Errorf("%w under key %q: inflates to more than %d bytes", ErrUndecodable, key, maxDecoded)
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w under key %q: %w", ErrUndecodable, key, err)
	}
	if head.Version < 1 || head.Version > Version {
		return nil, fmt.Errorf("%w %d under key %q: this credchain reads versions 1 to %d; upgrade it", ErrUnsupportedVersion, head.Version, key, Version)
	}
	var inv Inventory
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, fmt.Errorf("%w under key %q: %w", ErrUndecodable, key, err)
	}
	if inv.Cluster != key {
		return nil, fmt.Errorf("%w: key %q, cluster %q", ErrClusterMismatch, key, inv.Cluster)
	}
	return &inv, nil
}

// externalSecrets counts the ExternalSecrets the roles' radii list (each is under one role).
func (inv *Inventory) externalSecrets() int {
	n := 0
	for _, r := range inv.Roles {
		n += len(r.BlastRadius.ExternalSecrets)
	}
	return n
}
