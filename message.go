package waitingroom

import (
	"fmt"
	"maps"
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Limits of Config.Messages.
const (
	// MaxMessageLanguages is how many languages a room's message may be written in.
	MaxMessageLanguages = 10
	// MaxMessageBytes is the longest a message may be in one language, in bytes of UTF-8.
	MaxMessageBytes = 500
)

// Message is what an operator tells a room's visitors (Config.Messages), in the languages
// it was written in. A visitor reads it in its own language (In). The zero Message says
// nothing. A Message does not change: it is safe to share and to use concurrently.
type Message struct{ m *messageSet }

// messageSet is a validated Config.Messages, ready to pick from.
type messageSet struct {
	tags    []language.Tag // sorted by their text
	texts   []string
	matcher language.Matcher
	english int // the index of the English text, -1 for none
}

// Len returns the number of languages the message is written in; 0 for none.
func (m Message) Len() int {
	if m.m == nil {
		return 0
	}
	return len(m.m.tags)
}

// In returns the message in the language that matches tag (golang.org/x/text/language's
// Matcher, with high confidence: "ja" finds "ja-JP", but "zh-Hant" does not find
// "zh-Hans"), else in English, else in the first of its languages by tag, with the language
// it is written in; "" and language.Und when there is no message.
func (m Message) In(tag language.Tag) (string, language.Tag) {
	if m.m == nil {
		return "", language.Und
	}
	i := m.m.english
	if _, j, conf := m.m.matcher.Match(tag); conf >= language.High {
		i = j
	}
	if i < 0 {
		i = 0
	}
	return m.m.texts[i], m.m.tags[i]
}

// Texts returns the message by language tag, as Config.Messages has it (nil for none): a
// copy, the caller's to keep.
func (m Message) Texts() map[string]string {
	if m.m == nil {
		return nil
	}
	out := make(map[string]string, len(m.m.tags))
	for i, t := range m.m.tags {
		out[t.String()] = m.m.texts[i]
	}
	return out
}

// newMessage checks Config.Messages and returns them with their tags in canonical form
// ("en-us" is "en-US"), and the Message made of them.
func newMessage(in map[string]string) (map[string]string, Message, error) {
	if len(in) == 0 {
		return nil, Message{}, nil
	}
	if len(in) > MaxMessageLanguages {
		return nil, Message{}, configError("Messages", "Messages has %d languages; at most %d", len(in), MaxMessageLanguages)
	}
	out := make(map[string]string, len(in))
	from := make(map[string]string, len(in)) // canonical tag -> the key it was given as
	for _, k := range slices.Sorted(maps.Keys(in)) {
		field := fmt.Sprintf("Messages[%q]", k)
		t, err := language.Parse(k)
		if err != nil || t == language.Und || len(k) > 64 {
			return nil, Message{}, configError(field, "%s: %q is not a language tag (BCP 47, such as \"en\" or \"ja-JP\")", field, k)
		}
		c := t.String()
		if prev, ok := from[c]; ok {
			return nil, Message{}, configError(field, "%s: the language %s is given twice (also as %q)", field, c, prev)
		}
		if p := textProblem(in[k]); p != "" {
			return nil, Message{}, configError(field, "%s %s", field, p)
		}
		from[c], out[c] = k, in[k]
	}
	s := &messageSet{english: -1}
	for _, c := range slices.Sorted(maps.Keys(out)) {
		s.tags = append(s.tags, language.MustParse(c))
		s.texts = append(s.texts, out[c])
	}
	s.matcher = language.NewMatcher(s.tags)
	if _, i, conf := s.matcher.Match(language.English); conf >= language.High {
		s.english = i
	}
	return out, Message{s}, nil
}

// textProblem says what makes s no message to show, or "": it is plain text of 1 to
// MaxMessageBytes bytes of UTF-8, without control characters (line breaks included: the
// pages show it as one paragraph).
func textProblem(s string) string {
	switch {
	case s == "":
		return "is empty; leave the language out instead"
	case len(s) > MaxMessageBytes:
		return fmt.Sprintf("is %d bytes; at most %d", len(s), MaxMessageBytes)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("holds a control character (%U at byte %d); write plain text on one line", r, i)
		}
	}
	return ""
}
