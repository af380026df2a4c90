package serve

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/serve/audit"
)

// An answer GitHub did not take (it was down, overloaded, or rate
// limited) is not lost: its delivery waits, with backoff, and is claimed
// again (by any replica, after a restart too) to send the decision it
// recorded, for as long as GitHub would still accept it.

// pendingAnswer is an answer to be tried again later.
type pendingAnswer struct{ err error }

func (p *pendingAnswer) Error() string {
	return "answer not taken by GitHub, to be tried again: " + p.err.Error()
}
func (p *pendingAnswer) Unwrap() error { return p.err }

// answerWindow is how long after its delivery an answer is still worth
// sending: GitHub keeps a deployment waiting for its protection rules up
// to 30 days; a pull request's check is of use as long as the pull
// request is open, and a week covers an outage.
func answerWindow(event string) time.Duration {
	if event == "deployment_protection_rule" {
		return 30 * 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// willRetry reports whether an answer that failed is to be tried again:
// GitHub could not be reached or failed on its side (5xx), or limited
// the rate, and the delivery is still within its window. An answer
// refused for what it is (4xx) or never sent (an invalid delivery) is
// not.
func (s *Server) willRetry(d *audit.Delivery, answer map[string]any, err error) bool {
	if err == nil || answer == nil {
		return false
	}
	if s.now().Sub(d.ReceivedAt) >= answerWindow(d.Event) {
		return false
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var creds *credentialsError
	switch {
	case errors.As(err, &creds):
		return false
	case errors.As(err, &rl) || errors.As(err, &abuse):
		return true
	}
	status, _ := answer["status"].(int)
	return status == 0 || status >= 500 || status == http.StatusTooManyRequests
}

// retryWait is how long a delivery waits before its answer's next try:
// doubling from the base, at most ten minutes, with a fifth of jitter so
// that replicas and deliveries do not retry in step.
func (s *Server) retryWait(tries int) time.Duration {
	wait := s.cfg.AnswerRetryBase
	for range min(tries, 20) {
		wait *= 2
		if wait >= maxRetryWait {
			wait = maxRetryWait
			break
		}
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(wait) * jitter)
}

const maxRetryWait = 10 * time.Minute

// now is the server's clock.
func (s *Server) now() time.Time { return s.cfg.Now() }

// wakeWorkers has an idle worker look for work now, not at its next poll.
func (s *Server) wakeWorkers() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
