package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxTokenAnswer bounds a token endpoint's answer read into memory.
const maxTokenAnswer = 1 << 20

// ping is GET /v2/ without credentials: the registry's WWW-Authenticate challenge ("" when it
// answers 200 without), and the base it answered at. With Insecure, a key without a scheme
// whose HTTPS call fails is tried over plain HTTP.
func (rc *RegistryChecker) ping(ctx context.Context, base *url.URL, mayFallBack bool) (string, *url.URL, error) {
	resp, err := rc.get(ctx, base, nil)
	if err != nil && rc.Insecure && mayFallBack && base.Scheme == "https" {
		plain := *base
		plain.Scheme = "http"
		if resp, err = rc.get(ctx, &plain, nil); err == nil {
			base = &plain
		}
	}
	if err != nil {
		return "", base, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return "", base, nil
	case http.StatusUnauthorized:
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			return c, base, nil
		}
		return "", base, fmt.Errorf("GET %s answers 401 with no WWW-Authenticate challenge", base)
	}
	return "", base, fmt.Errorf("GET %s answers HTTP %d, not the registry API's 200 or 401", base, resp.StatusCode)
}

// get calls u with auth set (nil: none) and closes the body; the error never holds auth.
func (rc *RegistryChecker) get(ctx context.Context, u *url.URL, auth func(*http.Request)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := rc.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds no credential, but say it once
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxTokenAnswer))
	resp.Body.Close()
	return resp, nil
}

// authenticate calls /v2/ with the credential as the challenge asks: it returns the scheme used
// and the authenticated call's status (for Bearer, the token endpoint's when it refuses).
func (rc *RegistryChecker) authenticate(ctx context.Context, base *url.URL, challenge, user, pass, identityToken string) (string, int, error) {
	if challenge == "" {
		return "none", http.StatusOK, nil
	}
	scheme, params := parseChallenge(challenge)
	switch strings.ToLower(scheme) {
	case "basic":
		resp, err := rc.get(ctx, base, func(r *http.Request) { r.SetBasicAuth(user, pass) })
		if err != nil {
			return "basic", 0, err
		}
		return "basic", resp.StatusCode, nil
	case "bearer":
		token, status, err := rc.token(ctx, params, user, pass, identityToken)
		if err != nil || token == "" {
			return "bearer", status, err
		}
		resp, err := rc.get(ctx, base, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		if err != nil {
			return "bearer", 0, err
		}
		return "bearer", resp.StatusCode, nil
	}
	return scheme, 0, fmt.Errorf("the registry asks for %s authentication, which is not tried", scheme)
}

// token asks the Bearer challenge's realm for a token with the credential (basic auth; an
// identity token is sent as the password, as Docker's OAuth fallback does not apply to GET). It
// returns the token, or the realm's refusing status.
func (rc *RegistryChecker) token(ctx context.Context, params map[string]string, user, pass, identityToken string) (string, int, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", 0, fmt.Errorf("the registry's Bearer challenge has no usable realm (%q)", params["realm"])
	}
	q := realm.Query()
	for _, k := range []string{"service", "scope"} {
		if params[k] != "" {
			q.Set(k, params[k])
		}
	}
	if user != "" {
		q.Set("account", user)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", 0, fmt.Errorf("internal error: %w", err)
	}
	if identityToken != "" && pass == "" {
		pass = identityToken
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := rc.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", 0, fmt.Errorf("token realm %s: %w", realm.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, nil
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenAnswer)).Decode(&t); err != nil {
		return "", 0, fmt.Errorf("token realm %s: the answer is not a token (%s)", realm.Host, jsonErrorWithoutData(err))
	}
	return cmpOr(t.Token, t.AccessToken), 0, nil
}

// parseChallenge splits `Bearer realm="https://x/token",service="x"` into the scheme and its
// parameters (quoted values may hold commas).
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				v, rest = after[1:], ""
			} else {
				v, rest = after[1:1+end], after[2+end:]
			}
		} else {
			v, rest, _ = strings.Cut(after, ",")
		}
		params[k] = v
		rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
		rest = strings.TrimSpace(rest)
	}
	return scheme, params
}
