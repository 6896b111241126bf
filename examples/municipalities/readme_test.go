package main

import (
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCurlSession runs the README's session with the admin API as written: the
// program's flags from its go run line, then each curl command against the same handlers,
// in process. Each command's expected answer is the comment line under it, abridged: every
// "field":value pair it shows (values without "...") must be in the answer.
func TestReadmeCurlSession(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- curl-session -->\n```sh\n")
	if !ok {
		t.Fatal("README.md has no <!-- curl-session --> block")
	}
	block, _, _ = strings.Cut(block, "```")
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", "readme-session-token-0123")
	vars := map[string]string{"WAITINGROOM_ADMIN_TOKEN": os.Getenv("WAITINGROOM_ADMIN_TOKEN")}
	var p *platform
	var last string // the answer of the latest curl, for the comment under it
	pair := regexp.MustCompile(`"([a-z_0-9]+)":("[^"]*"|-?[0-9.]+|true|false|null)`)
	commands := 0
	for n, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "export "):
		case strings.HasPrefix(line, "go run ./examples/municipalities "):
			args := words(t, strings.TrimSuffix(strings.TrimPrefix(line, "go run ./examples/municipalities "), " &"), vars)
			p, _ = newPlatform(t, args...)
		case strings.HasPrefix(line, "# {"):
			if last == "" {
				t.Fatalf("README.md session line %d: an answer with no command above it", n+1)
			}
			for _, m := range pair.FindAllString(line, -1) {
				if !strings.Contains(m, "...") && !strings.Contains(last, m) {
					t.Errorf("README.md session line %d: the answer has no %s:\n%s", n+1, m, last)
				}
			}
			last = ""
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "curl "):
			if p == nil {
				t.Fatal("a curl command before the go run line")
			}
			last = curl(t, p, words(t, strings.TrimPrefix(line, "curl "), vars))
			commands++
		default:
			name, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("README.md session line %d: what is %q?", n+1, line)
			}
			w := words(t, value, vars)
			vars[name] = strings.Join(w, " ")
		}
	}
	if commands < 5 {
		t.Errorf("%d curl commands ran, want the whole session", commands)
	}
}

// curl runs one curl command line (-s, -H, -X, -d and a URL) against the platform.
func curl(t *testing.T, p *platform, args []string) string {
	t.Helper()
	method, body, target := "GET", "", ""
	var header [][2]string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-s":
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			header = append(header, [2]string{k, strings.TrimSpace(v)})
		case "-X":
			i++
			method = args[i]
		case "-d":
			i++
			body = args[i]
			if method == "GET" {
				method = "POST"
			}
		default:
			if strings.HasPrefix(a, "-") {
				t.Fatalf("curl option %s: not understood here", a)
			}
			target = a
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Host != "127.0.0.1:9090" {
		t.Fatalf("curl URL %q: want the admin API at 127.0.0.1:9090", target)
	}
	req := httptest.NewRequest(method, u.RequestURI(), strings.NewReader(body))
	for _, h := range header {
		req.Header.Set(h[0], h[1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
	}
	rec := httptest.NewRecorder()
	p.admin.ServeHTTP(rec, req)
	return rec.Body.String()
}

// words splits a shell line into words: single quotes keep everything, double quotes and
// bare words expand $NAME.
func words(t *testing.T, line string, vars map[string]string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	in := false
	expand := func(s string) string {
		return regexp.MustCompile(`\$[A-Za-z_][A-Za-z_0-9]*`).ReplaceAllStringFunc(s, func(v string) string { return vars[v[1:]] })
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				t.Fatalf("an unclosed quote in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			in = true
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				t.Fatalf("an unclosed quote in %q", line)
			}
			cur.WriteString(expand(line[i+1 : i+1+end]))
			i += end + 1
			in = true
		case c == ' ':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\'' && line[j] != '"' {
				j++
			}
			cur.WriteString(expand(line[i:j]))
			i = j - 1
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
