package middleware

import "golang.org/x/text/language"

// Japanese is the built-in pages' Japanese, in the polite style (です・ます).
var Japanese = Messages{
	Tag:  language.Japanese,
	Name: "日本語",

	Time:        "15:04",
	TimeSeconds: "15:04:05",
	Date:        "1月2日({weekday})",
	Weekdays:    [7]string{"日", "月", "火", "水", "木", "金", "土"},
	Months:      [12]string{"1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"},
	Group:       ",",

	Seconds:      Plural{Other: "{n}秒"},
	Minutes:      Plural{Other: "{n}分"},
	Hours:        Plural{Other: "{n}時間"},
	Days:         Plural{Other: "{n}日"},
	HoursMinutes: "{hours}{minutes}",
	Range:        "{from}～{to}",
	MinutesRange: Plural{Other: "{from}～{n}分"},

	WaitingTitle:  "順番にご案内しています",
	FIFO:          "ただいまアクセスが集中しているため、お越しいただいた順に少しずつご案内しています。",
	Random:        "ただいまアクセスが集中しているため、少しずつご案内しています。ご案内の順番は無作為に決まり、いつお越しになったかにかかわらず、お待ちの皆さまに同じ機会があります。",
	KeepOpen:      "このページを開いたままお待ちください。表示は自動で更新され、順番が来るとサイトへ移動します。ページを再読み込みしても、順番は変わりません。",
	AheadLabel:    "あなたより前にお待ちの方",
	People:        Plural{Other: "{n}人"},
	OthersLabel:   "ほかにお待ちの方",
	Next:          "次はあなたの番です",
	WaitLabel:     "待ち時間の目安",
	Around:        "{time}頃",
	WaitUnknown:   "まだお知らせできません",
	Progress:      "順番待ちの進み具合",
	ProgressValue: "お並びいただいた時点で前にお待ちだった{total}人のうち、{gone}人のご案内が済みました。",
	Joined:        "{time}に順番待ちを始めました。",
	Updated:       "最終更新：{time}",
	AnnounceAhead: Plural{Other: "あなたより前に{n}人お待ちです。"},
	AnnounceWait:  "待ち時間の目安は{wait}です。",
	Turn:          "あなたの番になりました。サイトへ移動します…",
	TurnTitle:     "順番が来ました",
	Reconnecting:  "接続が切れました。再接続しています…　順番はそのまま保たれます。",
	CookiesOff:    "お使いのブラウザーでCookie（クッキー）が無効になっています。順番を保つにはCookieが必要です。このサイトのCookieを許可してから、ページを再読み込みしてください。",
	Paused:        "現在、ご案内を一時停止しています。このページを開いたままお待ちください。順番はそのまま保たれ、再開すると順にご案内します。",
	Full:          "大変混み合っており、現在のペースでは待ち時間が1日を超える見込みです。このままお待ちいただければ順番は保たれますが、日を改めてお越しいただくこともご検討ください。",
	MessageLabel:  "サイトからのお知らせ",
	SlotsLeft:     Plural{Other: "残り{n}枠"},
	NoScript:      "このページは{n}秒ごとに自動で再読み込みされます。",

	PrequeueTitle: "まだ受付開始前です",
	Opens:         "{time}に受付を開始します（あと{in}）。",
	OpensOn:       "{date} {time}に受付を開始します（あと{in}）。",
	PrequeueFIFO:  "受付開始後は、お越しいただいた順にご案内します。",
	Shuffle:       "受付開始時に、ここでお待ちの方の順番を抽選で決めます。早くお越しいただいても順番は有利になりませんので、慌てずにお待ちください。",
	Drawn:         "受付開始時にお待ちだった方の順番は、抽選で決まりました。開始後にお越しの方は、その後ろにお越しいただいた順で並びます。",

	ClosedTitle: "ただいま受付を停止しています",
	Closed:      "現在、このサイトはご利用いただけません。時間をおいて、改めてお越しください。",
	ClosedOpens: "{date} {time}に受付を開始します。",
	OutageTitle: "申し訳ありません。システムに問題が発生しています",
	Outage:      "現在、順番を確認できません。このページは{n}秒後に自動で再試行します。すでにお並びの方の順番は、そのまま保たれます。",

	NotSentEnded:      "入力内容は送信されませんでした。送信される前の{time}に、ご利用時間が終了していました。",
	NotSentEndedEarly: "入力内容は送信されませんでした。ご利用時間が終了していました。",
	NotSentNoCookie:   "入力内容は送信されませんでした。ご利用状況を確認できませんでした。別のブラウザーでフォームを開いた場合や、Cookieを削除した場合に起こります。",
	NotSentCookiesOff: "入力内容は送信されませんでした。お使いのブラウザーでCookieが無効になっているため、ご利用状況を確認できません。このサイトのCookieを許可してください。",
	NotSentWaiting:    "入力内容は送信されませんでした。まだ順番待ちの途中です。",
	Kept:              "入力内容は保存してあります。順番が来たら、入力済みのフォームを表示します。",
	NotKept:           "入力内容は保存できませんでした。順番が来たら、もう一度フォームにご入力ください。",

	Language: "言語",
}
