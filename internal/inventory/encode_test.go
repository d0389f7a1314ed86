package inventory

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credchain/credchain/internal/events"
)

func TestValidClusterName(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cluster string
		wantErr string
	}{
		"plain":           {cluster: "prod-eu-1"},
		"every character": {cluster: "a-b_c=d.e9Z"},
		"empty":           {cluster: "", wantErr: "invalid cluster name: empty"},
		"a slash":         {cluster: "prod/eu", wantErr: `invalid cluster name "prod/eu": only letters, digits, '-', '_', '=' and '.'`},
		"a wildcard":      {cluster: "prod.*", wantErr: `invalid cluster name "prod.*": only letters, digits, '-', '_', '=' and '.'`},
		"a space":         {cluster: "prod eu", wantErr: `invalid cluster name "prod eu": only letters, digits, '-', '_', '=' and '.'`},
		"leading dot":     {cluster: ".prod", wantErr: `invalid cluster name ".prod": no leading, trailing or doubled '.'`},
		"doubled dot":     {cluster: "prod..eu", wantErr: `invalid cluster name "prod..eu": no leading, trailing or doubled '.'`},
		"too long":        {cluster: strings.Repeat("c", 254), wantErr: "invalid cluster name: 254 bytes, at most 253"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := ValidClusterName(tc.cluster)
			if got := errString(err); got != tc.wantErr {
				t.Fatalf("err = %q, want %q", got, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidCluster) {
				t.Fatalf("err %v is not ErrInvalidCluster", err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good := func(mod func(*Inventory)) []byte {
		inv := sampleInventory("eu-1")
		mod(inv)
		b, err := Encode(inv, DefaultMaxBytes)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, tc := range map[string]struct {
		key     string
		data    []byte
		max     int
		wantErr error
		wantMsg string
	}{
		"a value Encode wrote": {key: "eu-1", data: good(func(*Inventory) {})},
		"not gzip":             {key: "eu-1", data: []byte(`{"version":1}`), wantErr: ErrUndecodable, wantMsg: `undecodable inventory under key "eu-1": gzip: invalid header`},
		"gzip of not JSON":     {key: "eu-1", data: gz(t, "hello"), wantErr: ErrUndecodable, wantMsg: `undecodable inventory under key "eu-1": invalid character 'h' looking for beginning of value`},
		"truncated gzip":       {key: "eu-1", data: good(func(*Inventory) {})[:40], wantErr: ErrUndecodable, wantMsg: `undecodable inventory under key "eu-1": unexpected EOF`},
		"a future version": {key: "eu-1", data: gz(t, `{"version":2,"cluster":"eu-1","roles":"a shape this reader does not know"}`),
			wantErr: ErrUnsupportedVersion, wantMsg: `unsupported inventory version 2 under key "eu-1": this credchain reads versions 1 to 1; upgrade it`},
		"no version": {key: "eu-1", data: gz(t, `{"cluster":"eu-1"}`), wantErr: ErrUnsupportedVersion,
			wantMsg: `unsupported inventory version 0 under key "eu-1": this credchain reads versions 1 to 1; upgrade it`},
		"a wrong shape": {key: "eu-1", data: gz(t, `{"version":1,"cluster":"eu-1","roles":{}}`), wantErr: ErrUndecodable,
			wantMsg: `undecodable inventory under key "eu-1": json: cannot unmarshal object into Go struct field Inventory.roles of type []inventory.Role`},
		"another cluster's name": {key: "eu-2", data: good(func(*Inventory) {}), wantErr: ErrClusterMismatch,
			wantMsg: `inventory names another cluster than its key: key "eu-2", cluster "eu-1"`},
		"a gzip bomb": {key: "eu-1", data: gz(t, `{"version":1,"cluster":"eu-1","x":"`+strings.Repeat("a", 1<<20)+`"}`), max: 1 << 16,
			wantErr: ErrUndecodable, wantMsg: `undecodable inventory under key "eu-1": inflates to more than 65536 bytes`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			max := tc.max
			if max == 0 {
				max = DefaultMaxDecodedBytes
			}
			inv, err := Decode(tc.key, tc.data, max)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if want := sampleInventory("eu-1"); inv.Cluster != want.Cluster || len(inv.Roles) != len(want.Roles) || !inv.PublishedAt.Equal(want.PublishedAt) {
					t.Fatalf("decoded %+v, want %+v", inv, want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || err.Error() != tc.wantMsg {
				t.Fatalf("err = %v, want %q (%v)", err, tc.wantMsg, tc.wantErr)
			}
		})
	}
}

// TestEncodeRefusesOversize: an inventory over the payload NATS accepts is refused before the
// put, with an error saying how large it is, what it holds and what to raise.
func TestEncodeRefusesOversize(t *testing.T) {
	t.Parallel()
	inv := sampleInventory("eu-1")
	b, err := Encode(inv, DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Encode(inv, len(b)-1)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{`cluster "eu-1"'s inventory (1 stores, 1 ExternalSecrets) is `, " bytes gzip-compressed (", "raise max_payload"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func sampleInventory(cluster string) *Inventory {
	return &Inventory{Version: Version, Cluster: cluster, PublishedAt: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC),
		Stores: []Store{{Kind: "SecretStore", Namespace: "prod", Name: "vault", Server: "https://vault:8200", Login: "kubernetes", Mount: "kubernetes-" + cluster, Role: "eso"}},
		Roles: []Role{{Mount: "kubernetes-" + cluster, Name: "eso", BlastRadius: events.BlastRadius{
			Stores:          []events.ObjectRef{{Kind: "SecretStore", Namespace: "prod", Name: "vault"}},
			ExternalSecrets: []events.ObjectRef{{Kind: "ExternalSecret", Namespace: "prod", Name: "regcred"}},
			Secrets:         []events.ObjectRef{{Kind: "Secret", Namespace: "prod", Name: "regcred"}},
			Workloads:       []events.ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "app"}}}}}}
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
