package middleware

import "golang.org/x/text/language"

// SimplifiedChinese is the built-in pages' Simplified Chinese.
var SimplifiedChinese = Messages{
	Tag:  language.SimplifiedChinese,
	Name: "简体中文",

	Time:        "15:04",
	TimeSeconds: "15:04:05",
	Date:        "1月2日 {weekday}",
	Weekdays:    [7]string{"星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"},
	Months:      [12]string{"1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"},
	Group:       ",",

	Seconds:      Plural{Other: "{n}秒"},
	Minutes:      Plural{Other: "{n}分钟"},
	Hours:        Plural{Other: "{n}小时"},
	Days:         Plural{Other: "{n}天"},
	HoursMinutes: "{hours}{minutes}",
	Range:        "{from}至{to}",
	MinutesRange: Plural{Other: "{from}至{n}分钟"},

	WaitingTitle:  "您正在排队",
	FIFO:          "网站访问人数较多，我们按到达顺序分批让大家进入。",
	Random:        "网站访问人数较多，我们分批让大家进入，顺序随机：无论何时到达，每位等候者的机会都相同。",
	KeepOpen:      "请保持此页面打开。页面会自动更新，轮到您时会自动进入网站。刷新页面不会失去您的位置。",
	AheadLabel:    "您前面的人数",
	People:        Plural{Other: "{n}人"},
	OthersLabel:   "其他等候者",
	Next:          "下一位就是您",
	WaitLabel:     "预计等待时间",
	Around:        "约{time}",
	WaitUnknown:   "暂时无法估计",
	Progress:      "排队进度",
	ProgressValue: "您到达时前面有{total}人，其中{gone}人已进入。",
	Joined:        "您于{time}开始排队。",
	Updated:       "最后更新：{time}",
	AnnounceAhead: Plural{Other: "您前面还有{n}人。"},
	AnnounceWait:  "预计等待时间{wait}。",
	Turn:          "轮到您了，正在进入网站…",
	TurnTitle:     "轮到您了",
	Reconnecting:  "连接已断开，正在重试…您的位置会保留。",
	CookiesOff:    "您的浏览器不接受 Cookie，本网站需要 Cookie 来保留您的排队位置。请允许本网站使用 Cookie，然后刷新页面。",
	Paused:        "入场暂时停止。请保持此页面打开：您的位置会保留，恢复入场后队伍将继续前进。",
	Full:          "队伍非常长：按目前的速度，需要等待一天以上。留下来可以保留您的位置，您也可以改天再来。",
	MessageLabel:  "网站通知",
	SlotsLeft:     Plural{Other: "剩余{n}个名额"},
	NoScript:      "此页面每{n}秒自动刷新一次。",

	PrequeueTitle: "尚未开放",
	Opens:         "将于{time}开放，还有{in}。",
	OpensOn:       "将于{date} {time}开放，还有{in}。",
	PrequeueFIFO:  "开放后，将按到达顺序让大家进入。",
	Shuffle:       "开放时，在此等候的所有人将按随机顺序进入，因此无需着急：早到并不会排在前面。",
	Drawn:         "开放时已随机抽取顺序。开放后到达的人按到达顺序排在后面。",

	ClosedTitle: "暂停开放",
	Closed:      "网站目前不接待访客，请稍后再来。",
	ClosedOpens: "将于{date} {time}开放。",
	OutageTitle: "抱歉，我们这边出现了问题",
	Outage:      "目前无法查询排队状态。此页面将在{n}秒后自动重试。如果您已在排队，您的位置会保留。",

	NotSentEnded:      "您的表单未能提交：您的使用时间已于{time}结束。",
	NotSentEndedEarly: "您的表单未能提交：您的使用时间已结束。",
	NotSentNoCookie:   "您的表单未能提交：我们无法识别您的访问。如果表单是在其他浏览器中打开的，或者 Cookie 已被清除，就会出现这种情况。",
	NotSentCookiesOff: "您的表单未能提交：您的浏览器不接受 Cookie，本网站需要 Cookie 来识别您。请允许本网站使用 Cookie。",
	NotSentWaiting:    "您的表单未能提交：您仍在排队中。",
	Kept:              "您填写的内容已保存。轮到您时，将显示已填好的表单。",
	NotKept:           "您填写的内容未能保存。轮到您时，请重新填写表单。",

	Language: "语言",
}
