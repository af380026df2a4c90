package workbench

import (
	"context"
	"sync/atomic"
)

// Requests counts the GitHub API requests made to decide one subject: an
// installation has 5,000 to 15,000 an hour, and a 304 answer to a
// conditional request costs none of them.
type Requests struct {
	// Sent is every request that reached GitHub.
	Sent int64 `json:"sent"`
	// NotModified is those of them GitHub answered 304: the cached
	// response stood, at no cost to the rate limit.
	NotModified int64 `json:"not_modified,omitempty"`
}

// requestTally is where the requests of one gathering are counted: the
// facts transport finds it in the request's context.
type requestTally struct{ sent, notModified atomic.Int64 }

type tallyKey struct{}

func withTally(ctx context.Context, t *requestTally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

func (t *requestTally) load() Requests {
	if t == nil {
		return Requests{}
	}
	return Requests{Sent: t.sent.Load(), NotModified: t.notModified.Load()}
}

// CountRequest counts a request sent to GitHub for the facts being
// gathered under ctx (the facts client calls it for each response).
func CountRequest(ctx context.Context, status int) {
	t, _ := ctx.Value(tallyKey{}).(*requestTally)
	if t == nil {
		return
	}
	t.sent.Add(1)
	if status == 304 {
		t.notModified.Add(1)
	}
}
