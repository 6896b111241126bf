package middleware

import (
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// TestWords checks how the built-in pages word each state, in English and Japanese.
func TestWords(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	base := waitingroom.Status{Method: waitingroom.FIFO, UsersAhead: 12, AheadAtEntry: 40, Joined: at.Add(-10 * time.Minute),
		LastUpdated: at, RefreshInterval: 20 * time.Second,
		Wait: estimate.Wait{Known: true, P25: 10 * time.Minute, P50: 12 * time.Minute, P75: 15 * time.Minute}}
	with := func(f func(*waitingroom.Status)) waitingroom.Status { s := base; f(&s); return s }
	p := &Pages{Catalog: DefaultCatalog(), Location: time.UTC}
	tests := []struct {
		name string
		msg  *Messages
		st   waitingroom.Status
		kind pageKind
		want map[string]string // texts field -> what it must contain ("" : must be empty)
	}{
		{"fifo", &English, base, waitingKind, map[string]string{
			"heading": "You are in the queue", "intro": "in the order they arrived", "ahead": "12", "aheadLabel": "People ahead of you",
			"wait": "10 to 15 minutes", "around": "around 9:12 AM", "progressText": "28 of the 40 people ahead of you when you arrived have gone in.",
			"joined": "You joined the queue at 8:50 AM.", "updated": "Last updated 9:00:00 AM", "note": "",
			"announce": "12 people ahead of you. Estimated wait 10 to 15 minutes."}},
		{"fifo ja", &Japanese, base, waitingKind, map[string]string{
			"heading": "順番にご案内しています", "ahead": "12人", "wait": "10～15分", "around": "9:12頃",
			"progressText": "お並びいただいた時点で前にお待ちだった40人のうち、28人のご案内が済みました。", "joined": "08:50に順番待ちを始めました。", "updated": "最終更新：09:00:00",
			"announce": "あなたより前に12人お待ちです。 待ち時間の目安は10～15分です。"}},
		{"next", &English, with(func(s *waitingroom.Status) { s.UsersAhead = 0 }), waitingKind, map[string]string{
			"ahead": "You are next", "wait": "10 to 15 minutes", "announce": "You are next. Estimated wait"}},
		{"long wait", &English, with(func(s *waitingroom.Status) { s.Wait.P25, s.Wait.P75 = 100*time.Minute, 150*time.Minute }), waitingKind, map[string]string{
			"wait": "1 hour 40 minutes to 2 hours 30 minutes"}},
		{"full", &English, with(func(s *waitingroom.Status) { s.Wait.P50, s.Wait.P75, s.QueueIsFull = 25*time.Hour, 30*time.Hour, true }), waitingKind, map[string]string{
			"note": "more than a day", "around": ""}},
		{"unknown wait", &English, with(func(s *waitingroom.Status) { s.Wait = estimate.Unknown("no basis") }), waitingKind, map[string]string{
			"wait": "not known yet", "around": ""}},
		{"queue all", &English, with(func(s *waitingroom.Status) { s.QueueAll, s.Wait = true, estimate.Unknown("queue all") }), waitingKind, map[string]string{
			"note": "Entry is paused", "wait": "", "announce": "Entry is paused"}},
		{"random", &English, with(func(s *waitingroom.Status) { s.Method, s.AheadAtEntry = waitingroom.Random, 0 }), waitingKind, map[string]string{
			"intro": "random order", "aheadLabel": "Others waiting", "ahead": "12", "progressText": ""}},
		{"pre-queue", &English, with(func(s *waitingroom.Status) {
			s.EventPrequeueing, s.TimeUntilEventStart, s.Wait, s.AheadAtEntry = true, 90*time.Second, estimate.Unknown("not started"), 12
		}), waitingKind, map[string]string{
			"heading": "Not open yet", "intro": "in the order they arrived", "opens": "Opens at 9:01 AM, in 2 minutes.", "wait": "", "progressText": ""}},
		{"shuffled pre-queue", &Japanese, with(func(s *waitingroom.Status) {
			s.EventPrequeueing, s.ShuffleAtEventStart, s.TimeUntilEventStart, s.Wait = true, true, 26*time.Hour, estimate.Unknown("not started")
		}), waitingKind, map[string]string{
			"heading": "まだ受付開始前です", "intro": "抽選", "aheadLabel": "ほかにお待ちの方", "opens": "11月27日(金) 11:00に受付を開始します（あと26時間）。"}},
		{"drawn", &English, with(func(s *waitingroom.Status) { s.EventActive, s.ShuffleAtEventStart = true, true }), waitingKind, map[string]string{
			"note": "drawn at random", "aheadLabel": "People ahead of you"}},
		{"closed", &English, base, closedKind, map[string]string{"heading": "Closed for now", "ahead": "", "keep": ""}},
		{"outage ja", &Japanese, base, outageKind, map[string]string{"heading": "申し訳ありません", "intro": "20秒後", "ahead": ""}},
		{"chinese", &SimplifiedChinese, base, waitingKind, map[string]string{"heading": "您正在排队", "ahead": "12人", "wait": "10至15分钟"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := p.words(tt.msg, &tt.st, &pageInfo{kind: tt.kind})
			got := map[string]string{"heading": tx.Heading, "intro": tx.Intro, "opens": tx.Opens, "aheadLabel": tx.AheadLabel,
				"ahead": tx.Ahead, "wait": tx.Wait, "around": tx.Around, "progressText": tx.ProgressText, "note": tx.Note,
				"joined": tx.Joined, "updated": tx.Updated, "keep": tx.Keep, "announce": tx.Announce}
			for k, want := range tt.want {
				if want == "" && got[k] != "" || !strings.Contains(got[k], want) {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestDurationsAndNumbers(t *testing.T) {
	for _, tt := range []struct {
		msg  *Messages
		d    time.Duration
		want string
	}{
		{&English, 0, "0 seconds"}, {&English, time.Second, "1 second"}, {&English, 1500 * time.Millisecond, "2 seconds"},
		{&English, time.Minute, "60 seconds"}, {&English, 61 * time.Second, "2 minutes"}, {&English, time.Hour, "60 minutes"},
		{&English, time.Hour + time.Second, "1 hour 1 minute"}, {&English, 2 * time.Hour, "2 hours"},
		{&English, 49 * time.Hour, "3 days"}, {&Japanese, 90 * time.Minute, "1時間30分"}, {&SimplifiedChinese, 5 * time.Minute, "5分钟"},
	} {
		if got := tt.msg.duration(tt.d); got != tt.want {
			t.Errorf("%v duration(%v) = %q, want %q", tt.msg.Tag, tt.d, got, tt.want)
		}
	}
	if got := English.number(1234567); got != "1,234,567" {
		t.Errorf("number = %q", got)
	}
	if got := English.waitRange(time.Minute, time.Minute); got != "1 minute" {
		t.Errorf("waitRange(1m, 1m) = %q", got)
	}
	if got := English.count(English.SlotsLeft, 1); got != "1 place left" {
		t.Errorf("one place: %q", got)
	}
}
