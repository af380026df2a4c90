package serve

import (
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
	m.registry.MustRegister(m.deliveries, m.decisions, m.decisionSeconds, m.shadowDisagreements, m.githubRequests,
		// The Go runtime's own: goroutines, memory, GC, GOMAXPROCS.
		collectors.NewGoCollector())
	return m
}
