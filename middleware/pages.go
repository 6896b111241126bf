package middleware

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// CloudflareStatus is the JSON answer for apps that ask with Accept: application/json, in the
// hosted rooms' field names (so their clients work unchanged) plus usersAhead. Durations
// are whole minutes; the hosted room's times are ISO-8601.
type CloudflareStatus struct {
	InWaitingRoom                bool   `json:"inWaitingRoom"`
	WaitTimeKnown                bool   `json:"waitTimeKnown"`
	WaitTime                     int64  `json:"waitTime"`
	WaitTime25Percentile         int64  `json:"waitTime25Percentile"`
	WaitTime50Percentile         int64  `json:"waitTime50Percentile"`
	WaitTime75Percentile         int64  `json:"waitTime75Percentile"`
	WaitTimeFormatted            string `json:"waitTimeFormatted"`
	QueueIsFull                  bool   `json:"queueIsFull"`
	QueueAll                     bool   `json:"queueAll"`
	LastUpdated                  string `json:"lastUpdated"`
	RefreshIntervalSeconds       int64  `json:"refreshIntervalSeconds"`
	QueueingMethod               string `json:"queueingMethod"`
	IsFIFOQueue                  bool   `json:"isFIFOQueue"`
	IsRandomQueue                bool   `json:"isRandomQueue"`
	IsPassthroughQueue           bool   `json:"isPassthroughQueue"`
	IsRejectQueue                bool   `json:"isRejectQueue"`
	IsEventActive                bool   `json:"isEventActive"`
	IsEventPrequeueing           bool   `json:"isEventPrequeueing"`
	TimeUntilEventStart          int64  `json:"timeUntilEventStart"`
	TimeUntilEventStartFormatted string `json:"timeUntilEventStartFormatted"`
	TimeUntilEventEnd            int64  `json:"timeUntilEventEnd"`
	TimeUntilEventEndFormatted   string `json:"timeUntilEventEndFormatted"`
	ShuffleAtEventStart          bool   `json:"shuffleAtEventStart"`
	Turnstile                    bool   `json:"turnstile"`
	InfiniteQueue                bool   `json:"infiniteQueue"`
	UsersAhead                   int64  `json:"usersAhead"`
}

// NewCloudflareStatus converts a Status to the hosted rooms' JSON fields.
func NewCloudflareStatus(st waitingroom.Status) CloudflareStatus {
	untilFormatted := func(d time.Duration) string {
		if d <= 0 {
			return "unavailable"
		}
		return estimate.Wait{Known: true, P25: d, P75: d}.Format()
	}
	c := CloudflareStatus{
		InWaitingRoom:                true,
		WaitTimeKnown:                st.Wait.Known,
		WaitTimeFormatted:            st.Wait.Format(),
		QueueIsFull:                  st.QueueIsFull,
		QueueAll:                     st.QueueAll,
		LastUpdated:                  st.LastUpdated.UTC().Format(time.RFC3339),
		RefreshIntervalSeconds:       int64(st.RefreshInterval / time.Second),
		QueueingMethod:               st.Method.String(),
		IsFIFOQueue:                  st.Method == waitingroom.FIFO,
		IsRandomQueue:                st.Method == waitingroom.Random,
		IsPassthroughQueue:           st.Method == waitingroom.Passthrough,
		IsRejectQueue:                st.Method == waitingroom.Reject,
		IsEventActive:                st.EventActive,
		IsEventPrequeueing:           st.EventPrequeueing,
		TimeUntilEventStart:          estimate.Minutes(st.TimeUntilEventStart),
		TimeUntilEventStartFormatted: untilFormatted(st.TimeUntilEventStart),
		TimeUntilEventEnd:            estimate.Minutes(st.TimeUntilEventEnd),
		TimeUntilEventEndFormatted:   untilFormatted(st.TimeUntilEventEnd),
		ShuffleAtEventStart:          st.ShuffleAtEventStart,
		UsersAhead:                   st.UsersAhead,
	}
	if st.Wait.Known {
		c.WaitTime = estimate.Minutes(st.Wait.P50)
		c.WaitTime25Percentile = estimate.Minutes(st.Wait.P25)
		c.WaitTime50Percentile = c.WaitTime
		c.WaitTime75Percentile = estimate.Minutes(st.Wait.P75)
	}
	return c
}

func writeJSON(w http.ResponseWriter, code int, st CloudflareStatus) {
	body, err := json.Marshal(struct {
		Room CloudflareStatus `json:"cfWaitingRoom"`
	}{st})
	if err != nil { // unreachable: the struct holds only plain fields
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

var defaultWaitingPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	st, _ := StatusFromContext(r.Context())
	if st.RefreshInterval > 0 {
		w.Header().Set("Refresh", strconv.Itoa(int(st.RefreshInterval/time.Second)))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	waitingTemplate.Execute(w, st)
})

var defaultClosedPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	closedTemplate.Execute(w, nil)
})

var waitingTemplate = template.Must(template.New("waiting").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>You are in the queue</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto;line-height:1.5">
<h1>You are in the queue</h1>
<p>The site is busy, so visitors go in a few at a time, in the order they arrived.
Keep this page open: it refreshes itself and lets you in when it is your turn.</p>
{{if .QueueAll}}<p>Entry is paused for now.</p>{{else}}
<p>People ahead of you: <strong>{{.UsersAhead}}</strong><br>
Estimated wait: <strong>{{.Wait.Format}}</strong></p>{{end}}
</body></html>
`))

var closedTemplate = template.Must(template.New("closed").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Closed</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto">
<h1>This site is not taking visitors right now</h1><p>Please come back later.</p>
</body></html>
`))
