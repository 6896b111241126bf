package wrprom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waitingroom-go/waitingroom/notify"
)

// NotifierCollector exports a notify.Notifier's counts, read when scraped: the
// notifications sent, given up and dropped (a full queue: the receiver was down or slow for
// long), the tries after the first, and the rooms' signals lost to a full channel.
type NotifierCollector struct{ n *notify.Notifier }

// NewNotifierCollector returns the collector of n's counts.
func NewNotifierCollector(n *notify.Notifier) (*NotifierCollector, error) {
	if n == nil {
		return nil, errors.New("wrprom: nil notifier")
	}
	return &NotifierCollector{n}, nil
}

var (
	notificationsDesc = prometheus.NewDesc("waitingroom_notifications_total",
		"Notifications by outcome: sent (a 2xx answer), failed (given up after the last try, or refused with a 4xx), dropped (the delivery queue was full).",
		[]string{"outcome"}, nil)
	retriesDesc = prometheus.NewDesc("waitingroom_notification_retries_total",
		"Delivery tries after a notification's first.", nil, nil)
	lostSignalsDesc = prometheus.NewDesc("waitingroom_notification_signals_lost_total",
		"Rooms' signals the notifier's channel was too full to take.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *NotifierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- notificationsDesc
	ch <- retriesDesc
	ch <- lostSignalsDesc
}

// Collect implements prometheus.Collector.
func (c *NotifierCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	for _, o := range []struct {
		outcome string
		v       int64
	}{{"sent", s.Sent}, {"failed", s.Failed}, {"dropped", s.Dropped}} {
		ch <- prometheus.MustNewConstMetric(notificationsDesc, prometheus.CounterValue, float64(o.v), o.outcome)
	}
	ch <- prometheus.MustNewConstMetric(retriesDesc, prometheus.CounterValue, float64(s.Retried))
	ch <- prometheus.MustNewConstMetric(lostSignalsDesc, prometheus.CounterValue, float64(s.LostSignals))
}
