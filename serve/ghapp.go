package serve

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// app authenticates as a GitHub App: an RS256 JWT for the app, exchanged
// for installation tokens that are cached until shortly before they
// expire and shared by every delivery of that installation.
type app struct {
	id     int64
	key    *rsa.PrivateKey
	apiURL string // with a trailing slash
	client *http.Client
	now    func() time.Time
	logger *slog.Logger
	mu     sync.Mutex
	tokens map[int64]installationToken
	minted int // tokens fetched, for tests and metrics
}

type installationToken struct {
	token   string
	expires time.Time
}

// tokenMargin is how long before its expiry a token is replaced.
const tokenMargin = 5 * time.Minute

// appJWT signs the app's JWT. iat is a minute in the past to allow for
// clock drift (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app).
func (a *app) appJWT() (string, error) {
	if a.key == nil || a.id == 0 {
		return "", errors.New("no GitHub App credentials (set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)")
	}
	now := a.now()
	claims := jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now.Add(-60 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
		Issuer:    strconv.FormatInt(a.id, 10),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
}

// token returns a valid installation token, fetching one when none is
// cached or the cached one is about to expire.
func (a *app) token(ctx context.Context, installation int64) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tokens[installation]; ok && a.now().Add(tokenMargin).Before(t.expires) {
		return t.token, nil
	}
	signed, err := a.appJWT()
	if err != nil {
		return "", &credentialsError{fmt.Errorf("sign app JWT: %w", err)}
	}
	url := fmt.Sprintf("%sapp/installations/%d/access_tokens", a.apiURL, installation)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := a.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("installation token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		err := fmt.Errorf("installation token for %d: GitHub answered %d: %s", installation, resp.StatusCode, strings.TrimSpace(string(body)))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			// The App's credentials or installation are wrong: trying
			// again will not mend them.
			return "", &credentialsError{err}
		}
		return "", err
	}
	var t struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.Token == "" {
		return "", fmt.Errorf("installation token for %d: unreadable answer", installation)
	}
	if a.tokens == nil {
		a.tokens = map[int64]installationToken{}
	}
	a.tokens[installation] = installationToken{token: t.Token, expires: t.ExpiresAt}
	a.minted++
	return t.Token, nil
}

// credentialsError is a failure to authenticate as the App that no retry
// mends: no key, or GitHub refusing the App or the installation.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// installationClient returns an HTTP client that authenticates as the
// installation. The token goes only to the configured API host.
func (a *app) installationClient(installation int64) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &tokenTransport{
			next: a.client.Transport,
			token: func(ctx context.Context) (string, error) {
				return a.token(ctx, installation)
			},
			apiURL: a.apiURL,
		},
	}
}

const apiVersion = "2022-11-28"

type tokenTransport struct {
	next   http.RoundTripper
	token  func(context.Context) (string, error)
	apiURL string
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.String(), t.apiURL) {
		// Never hand the token to a host taken from a payload.
		return nil, fmt.Errorf("refusing to send the installation token to %s", req.URL.Host)
	}
	tok, err := t.token(req.Context())
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "token "+tok)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// retryTransport retries requests that GitHub answered with a 5xx, or
// with a secondary rate limit, with exponential backoff.
type retryTransport struct {
	next     http.RoundTripper
	attempts int
	base     time.Duration
	sleep    func(context.Context, time.Duration) error
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	delay := t.base
	for attempt := 1; ; attempt++ {
		r := req.Clone(req.Context())
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		resp, err := t.next.RoundTrip(r)
		retry := err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
		wait := delay
		if err == nil {
			switch {
			case resp.StatusCode >= 500:
				retry = true
			case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
				if s := resp.Header.Get("Retry-After"); s != "" {
					if secs, perr := strconv.Atoi(s); perr == nil {
						retry, wait = true, time.Duration(secs)*time.Second
					}
				}
			}
		}
		if !retry || attempt >= t.attempts {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		delay *= 2
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
