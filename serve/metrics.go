package serve

import (
	"context"
	"time"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Log keys, one spelling everywhere.
const (
	keyDelivery = "delivery_id"
	keyRepo     = "repo"
	keyEvent    = "event"
	keyDecision = "decision"
)

type metrics struct {
	registry        *prometheus.Registry
	deliveries      *prometheus.CounterVec
	decisions       *prometheus.CounterVec
	decisionSeconds *prometheus.HistogramVec
	// shadowDisagreements counts decisions the shadow policies disagree with.
	shadowDisagreements *prometheus.CounterVec
	// githubRequests counts the requests for facts, by what GitHub answered.
	githubRequests *prometheus.CounterVec
	// answerTries counts answers GitHub did not take, kept to try again.
	answerTries prometheus.Counter
	// reconciled counts deliveries the reconciler took.
	reconciled prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitpoli_deliveries_total",
		Help: "Webhook deliveries received, by event and outcome (queued, duplicate, ignored, bad_signature, malformed, too_large, processed, failed).",
	}, []string{"event", "outcome"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitpoli_decisions_total",
		Help: "Decisions made, by policy, decision and source.",
	}, []string{"policy", "decision", "source"})
	m.decisionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gitpoli_decision_seconds",
		Help:    "Time to evaluate a policy.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
	}, []string{"policy"})
	m.shadowDisagreements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitpoli_shadow_disagreements_total",
		Help: "Deliveries the shadow policies decided differently from the enforced ones.",
	}, []string{"policy"})
	m.githubRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitpoli_github_fact_requests_total",
		Help: "GitHub API requests made to gather facts: result=\"sent\" were answered in full and cost the rate limit, result=\"not_modified\" were answered 304 to their ETag and cost nothing.",
	}, []string{"result"})
	m.answerTries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitpoli_answer_retries_total",
		Help: "Answers GitHub did not take (down, failing or rate limited), kept to be tried again.",
	})
	m.reconciled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitpoli_reconciled_deliveries_total",
		Help: "Deliveries GitHub could not hand over (serve down, or answering 503) that the reconciler fetched from the App's delivery list and queued.",
	})
	m.registry.MustRegister(m.deliveries, m.decisions, m.decisionSeconds, m.shadowDisagreements, m.githubRequests, m.answerTries, m.reconciled,
		// The Go runtime's own: goroutines, memory, GC, GOMAXPROCS.
		collectors.NewGoCollector())
	return m
}

// watchWaiting exports the answers waiting for a later try, and how long
// the oldest has waited since its delivery, read from the store at each
// scrape (every replica reports the same, shared queue).
func (m *metrics) watchWaiting(store *audit.Store, now func() time.Time) {
	waiting := func() (int, time.Time) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, oldest, err := store.Waiting(ctx)
		if err != nil {
			return -1, time.Time{}
		}
		return n, oldest
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitpoli_answers_waiting",
			Help: "Deliveries whose answer GitHub has not taken yet, waiting to be tried again (-1: the database did not say).",
		}, func() float64 { n, _ := waiting(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitpoli_answer_waiting_oldest_seconds",
			Help: "How long ago the oldest delivery whose answer waits was received (0: none waits).",
		}, func() float64 {
			n, oldest := waiting()
			if n <= 0 {
				return 0
			}
			return now().Sub(oldest).Seconds()
		}),
	)
}
