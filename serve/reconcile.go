package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
)

// GitHub does not redeliver a delivery that failed (serve was down, or
// answered 503): the reconciler lists the App's recent deliveries, and
// fetches and queues each one that asks for a decision and that the queue
// does not hold, as if it had just arrived.

// ReconcileReport says what a reconciliation saw and took.
type ReconcileReport struct {
	// Listed is the deliveries GitHub listed within the window.
	Listed int `json:"listed"`
	// Taken lists the GUIDs of the deliveries fetched and queued.
	Taken []string `json:"taken"`
	// Known counts those the queue held already; Ignored those no policy
	// decides.
	Known   int `json:"known"`
	Ignored int `json:"ignored"`
	// Left counts those left for the next run: past the fetches one run
	// may make, or received too recently to be known missing.
	Left int `json:"left"`
}

// Reconcile bounds: the deliveries GitHub keeps listed are of the last
// three days; a run reads at most reconcilePages pages and fetches at
// most reconcileFetches payloads, a few hundred requests of the App's
// rate limit; a delivery younger than reconcileSettle may still be on
// its way to the webhook.
const (
	reconcileWindow  = 72 * time.Hour
	reconcilePages   = 30
	reconcileFetches = 200
	reconcileSettle  = time.Minute
	// ReconcileLease is how long one replica holds the reconciler.
	ReconcileLease = 10 * time.Minute
)

// Reconcile takes the deliveries GitHub made in the last three days that
// ask for a decision and that the queue does not hold. With several
// replicas, one reconciles at a time: another that tries meanwhile does
// nothing and says so.
func (s *Server) Reconcile(ctx context.Context) (ReconcileReport, error) {
	rep := ReconcileReport{Taken: []string{}}
	if s.app.key == nil || s.app.id == 0 {
		return rep, errors.New("reconcile: the App's id and private key are needed to list its deliveries")
	}
	release, err := s.store.TryLease(ctx, "reconciler", ReconcileLease)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	defer release()
	gh, err := s.appClient()
	if err != nil {
		return rep, err
	}
	e := s.engine.Load()
	now := s.now()
	seen := map[string]bool{}
	opts := &github.ListCursorOptions{PerPage: 100}
	for page := 0; page < reconcilePages; page++ {
		list, resp, err := gh.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return rep, fmt.Errorf("reconcile: list the App's webhook deliveries: %w", err)
		}
		done := false
		for _, d := range list {
			delivered := d.GetDeliveredAt().Time
			if now.Sub(delivered) > reconcileWindow {
				done = true
				break
			}
			guid := d.GetGUID()
			if seen[guid] {
				continue // a redelivery of one already looked at
			}
			seen[guid] = true
			rep.Listed++
			probe := workbench.Delivery{Event: d.GetEvent(), ID: guid, Payload: json.RawMessage(fmt.Sprintf(`{"action":%q}`, d.GetAction()))}
			if e.Prefilter(probe) != nil {
				rep.Ignored++
				continue
			}
			state, err := s.store.DeliveryState(ctx, guid)
			switch {
			case err != nil:
				return rep, fmt.Errorf("reconcile: delivery %s: %w", guid, err)
			case state != "":
				rep.Known++
				continue
			case now.Sub(delivered) < reconcileSettle || len(rep.Taken) >= reconcileFetches:
				rep.Left++
				continue
			}
			if err := s.take(ctx, gh, d); err != nil {
				return rep, err
			}
			rep.Taken = append(rep.Taken, guid)
		}
		if done || resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	s.metrics.reconciled.Add(float64(len(rep.Taken)))
	if len(rep.Taken) > 0 {
		s.wakeWorkers()
	}
	return rep, nil
}

// take fetches one delivery GitHub made, with its payload, and queues it.
func (s *Server) take(ctx context.Context, gh *github.Client, d *github.HookDelivery) error {
	full, _, err := gh.Apps.GetHookDelivery(ctx, d.GetID())
	if err != nil {
		return fmt.Errorf("reconcile: fetch delivery %s: %w", d.GetGUID(), err)
	}
	if full.Request == nil || full.Request.RawPayload == nil {
		return fmt.Errorf("reconcile: delivery %s came without its payload", d.GetGUID())
	}
	event := d.GetEvent()
	for k, v := range full.Request.Headers {
		if strings.EqualFold(k, "X-GitHub-Event") {
			event = v
		}
	}
	fresh, err := s.store.Enqueue(ctx, audit.Delivery{ID: d.GetGUID(), Event: event, Payload: *full.Request.RawPayload, Origin: audit.OriginReconciler})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if fresh {
		s.log.Info("reconciled a delivery GitHub could not hand over", keyDelivery, d.GetGUID(), keyEvent, event,
			"status", d.GetStatus(), "delivered_at", d.GetDeliveredAt().Time.UTC().Format(time.RFC3339))
	}
	return nil
}

// appClient is a go-github client authenticated as the App itself (its
// JWT), which lists and fetches the App's webhook deliveries.
func (s *Server) appClient() (*github.Client, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &tokenTransport{
		next:   s.app.client.Transport,
		token:  func(context.Context) (string, error) { return s.app.appJWT() },
		apiURL: s.app.apiURL,
	}}
	return s.gitHub(client)
}

// reconcileLoop reconciles on start and then every interval, until ctx
// ends.
func (s *Server) reconcileLoop(ctx context.Context, every time.Duration) {
	for {
		rep, err := s.Reconcile(ctx)
		switch {
		case errors.Is(err, audit.ErrLeased):
			s.log.Info("another replica reconciles")
		case err != nil && ctx.Err() == nil:
			s.log.Error("reconcile failed", "error", err.Error())
		case err == nil:
			s.log.Info("reconciled", "listed", rep.Listed, "taken", len(rep.Taken), "known", rep.Known, "left", rep.Left)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
