// Package setup is what the examples share: opening the store a -store flag names, the
// signing keys from WAITINGROOM_KEY, and the admin API on its own listener.
package setup

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	redisstore "github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/token"
)

// OpenStore opens the store u names: "memory" (on clock), or redis://host:port/db.
func OpenStore(u string, clock func() time.Time) (store.Store, error) {
	switch {
	case u == "memory":
		return memory.New(memory.WithClock(clock)), nil
	case strings.HasPrefix(u, "redis://"), strings.HasPrefix(u, "rediss://"):
		opt, err := goredis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		opt.ContextTimeoutEnabled = true // the room's store timeout bounds every call
		return redisstore.New(goredis.NewClient(opt))
	}
	return nil, fmt.Errorf("unknown -store %q (want memory or redis://host:port/db)", u)
}

// LoadKeys reads WAITINGROOM_KEY; without it a random key is made, which suits one
// process. The random key is never logged (logs are not the place for secrets): whoever
// wants a key to share asks for one with -print-key.
func LoadKeys(name string) ([]token.HMACKey, error) {
	if v := strings.TrimSpace(os.Getenv("WAITINGROOM_KEY")); v != "" {
		return token.ParseKeys(v)
	}
	k, err := token.GenerateKey("k1")
	if err != nil {
		return nil, err
	}
	log.Printf("%s: WAITINGROOM_KEY is not set; made a random signing key, which no other instance shares, so this process cannot share its rooms.", name)
	log.Printf("%s: to share the rooms between processes, start each with the same WAITINGROOM_KEY from -print-key.", name)
	return []token.HMACKey{k}, nil
}

// ErrNoAdminToken is -admin-addr without WAITINGROOM_ADMIN_TOKEN.
var ErrNoAdminToken = fmt.Errorf("-admin-addr needs WAITINGROOM_ADMIN_TOKEN, the admin API's read-write bearer token (at least %d characters; for example: export WAITINGROOM_ADMIN_TOKEN=$(openssl rand -hex 16)); WAITINGROOM_ADMIN_READ_TOKEN may add a read-only one", admin.MinSecretLen)

// AdminTokens reads the admin API's tokens: WAITINGROOM_ADMIN_TOKEN (read-write, required)
// and WAITINGROOM_ADMIN_READ_TOKEN (read-only, optional).
func AdminTokens() ([]admin.Token, error) {
	rw := strings.TrimSpace(os.Getenv("WAITINGROOM_ADMIN_TOKEN"))
	if rw == "" {
		return nil, ErrNoAdminToken
	}
	toks := []admin.Token{{Name: "admin", Secret: rw, Scope: admin.ReadWrite}}
	if ro := strings.TrimSpace(os.Getenv("WAITINGROOM_ADMIN_READ_TOKEN")); ro != "" {
		toks = append(toks, admin.Token{Name: "viewer", Secret: ro, Scope: admin.ReadOnly})
	}
	return toks, nil
}

// AdminHandler is the admin API of reg's rooms on s, with the tokens of the environment.
func AdminHandler(reg *rooms.Registry, s store.Store) (http.Handler, error) {
	ctl, ok := s.(store.Control)
	if !ok {
		return nil, errors.New("the store keeps no settings")
	}
	toks, err := AdminTokens()
	if err != nil {
		return nil, err
	}
	return admin.New(reg, ctl, admin.WithTokens(toks...))
}

// Notifier is the notifier of -notify-url, or WAITINGROOM_NOTIFY_URL without it (nil, and
// no options, when neither is set) for the rooms lookup finds: the option gives each room its hook (rooms.WithRoomOptions).
// WAITINGROOM_NOTIFY_SECRET, when set, signs the bodies (notify.WithSecret).
func Notifier(url string, s store.Store, lookup func(id string) (*waitingroom.Room, bool)) (*notify.Notifier, []waitingroom.Option, error) {
	if url == "" {
		// The environment keeps a webhook's secret path out of the process list.
		url = strings.TrimSpace(os.Getenv("WAITINGROOM_NOTIFY_URL"))
	}
	if url == "" {
		return nil, nil, nil
	}
	once, ok := s.(store.Once)
	if !ok {
		return nil, nil, errors.New("-notify-url: the store cannot de-duplicate notifications (store.Once)")
	}
	var opts []notify.Option
	if secret := strings.TrimSpace(os.Getenv("WAITINGROOM_NOTIFY_SECRET")); secret != "" {
		opts = append(opts, notify.WithSecret([]byte(secret)))
	}
	n, err := notify.New(url, once, lookup, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("-notify-url: %w", err)
	}
	return n, []waitingroom.Option{waitingroom.WithHook(n.Hook())}, nil
}

// Run serves site on addr and, when admin is not nil, the admin API and dashboard on
// adminAddr, while reg's watch follows the store and n (when not nil) sends notifications,
// until SIGINT or SIGTERM, or until a listener fails. name starts its log lines.
func Run(name string, reg *rooms.Registry, site http.Handler, addr string, admin http.Handler, adminAddr string, n *notify.Notifier) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reg.Watch(ctx, 0) // other instances' and the admin API's changes, within a second
	if n != nil {
		log.Printf("%s: notifications to %v", name, n)
		go n.Run(ctx)
	}
	errs := make(chan error, 2)
	listen := func(addr string, h http.Handler) {
		errs <- serve(ctx, &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second})
	}
	if admin != nil {
		log.Printf("%s: admin API on http://%s/api/rooms, dashboard on http://%s/dashboard/", name, adminAddr, adminAddr)
		go listen(adminAddr, admin)
	}
	log.Printf("%s: listening on http://%s", name, addr)
	go listen(addr, site)
	return <-errs // the deferred stop ends the other
}

// serve runs srv until ctx ends, then shuts it down.
func serve(ctx context.Context, srv *http.Server) error {
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
