package explain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// RegistryChecker tries a pull secret's credential at each registry its .dockerconfigjson (or
// legacy .dockercfg) names, as the runbook's step 3 did with curl: GET /v2/ without credentials
// to learn how the registry authenticates (the Docker registry API's version check), then with
// them — basic auth, or for a Bearer challenge the token flow (the realm, with the service, asked
// with basic auth; /v2/ again with the token). 200 is ok; 401 or 403 broken.
//
// The credential goes only to the registry that asked for it (and its token realm, which the
// registry names), is never logged or returned, and is dropped from errors: RegistryResult holds
// the username at most.
type RegistryChecker struct {
	// Client makes the calls; its transport holds the TLS settings (NewRegistryChecker).
	Client *http.Client
	// Insecure also accepts a registry's certificate unverified and, when HTTPS fails, tries plain
	// HTTP, as Docker does for an insecure registry.
	Insecure bool
}

// registryTimeout bounds each call: a registry that does not answer is unknown, not a hang.
const registryTimeout = 10 * time.Second

// NewRegistryChecker builds a checker trusting the system's roots plus caPEM (may be nil), or
// nothing at all when insecure.
func NewRegistryChecker(caPEM []byte, insecure bool) (*RegistryChecker, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("--registry-ca: no PEM certificate in the file")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // --registry-insecure, asked for
	return &RegistryChecker{Client: &http.Client{Transport: tr, Timeout: registryTimeout}, Insecure: insecure}, nil
}

// dockerAuth is one entry of a docker config's auths (or of a legacy .dockercfg).
type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// CheckSecret tries every registry of s; nil when s holds no docker config.
func (rc *RegistryChecker) CheckSecret(ctx context.Context, s *corev1.Secret) []RegistryResult {
	if s == nil {
		return nil
	}
	auths, err := dockerAuths(s)
	if err != nil {
		return []RegistryResult{{Registry: "(" + string(s.Type) + ")", Err: err}}
	}
	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]RegistryResult, 0, len(keys))
	for _, k := range keys {
		out = append(out, rc.check(ctx, k, auths[k]))
	}
	return out
}

func dockerAuths(s *corev1.Secret) (map[string]dockerAuth, error) {
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", corev1.DockerConfigJsonKey, jsonErrorWithoutData(err))
		}
		return cfg.Auths, nil
	case corev1.SecretTypeDockercfg:
		var auths map[string]dockerAuth
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", corev1.DockerConfigKey, jsonErrorWithoutData(err))
		}
		return auths, nil
	}
	return nil, fmt.Errorf("type %s holds no registry credential", s.Type)
}

// jsonErrorWithoutData keeps a decoding error's kind, not the bytes it quotes (a credential).
func jsonErrorWithoutData(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %s: want %s", typ.Field, typ.Type)
	}
	return "invalid JSON"
}

// credentials are the username and password of an auths entry: its fields, else its auth
// (base64 of user:password).
func (a dockerAuth) credentials() (user, pass string, err error) {
	if a.Username != "" || a.Password != "" || a.Auth == "" {
		return a.Username, a.Password, nil
	}
	raw, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return "", "", errors.New("its auth is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errors.New("its auth is not user:password")
	}
	return user, pass, nil
}

// registryBase is the URL of the registry an auths key names: its scheme if it has one, else
// https; Docker Hub's legacy keys name registry-1.docker.io.
func registryBase(key string) (*url.URL, error) {
	raw := key
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not a registry host", key)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%q: scheme %s is not http or https", key, u.Scheme)
	}
	switch u.Host {
	case "index.docker.io", "docker.io":
		u.Host = "registry-1.docker.io"
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/v2/"}, nil
}

func (rc *RegistryChecker) check(ctx context.Context, key string, a dockerAuth) RegistryResult {
	res := RegistryResult{Registry: key}
	user, pass, err := a.credentials()
	res.Username = user
	if err != nil {
		res.Err = err
		return res
	}
	base, err := registryBase(key)
	if err != nil {
		res.Err = err
		return res
	}
	challenge, base, err := rc.ping(ctx, base, !strings.Contains(key, "://"))
	res.URL = base.String()
	if err != nil {
		res.Err = err
		return res
	}
	res.Auth, res.Status, res.Err = rc.authenticate(ctx, base, challenge, user, pass, a.IdentityToken)
	return res
}
