package registry

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/sirupsen/logrus"
)

// distribution logs only through logrus' process-wide standard logger (internal/dcontext's default logger
// is derived from logrus.StandardLogger, and request loggers from that). To keep the registry silent by
// default and its logs on the caller's slog.Logger, the first Start points that logger's output at
// io.Discard and adds one hook that forwards each entry to the running registries' loggers: an entry that
// names the host a request was sent to goes to that registry's logger, any other entry to every running
// registry's logger. This is the one piece of process-wide state in the package; it is installed once and
// is harmless when no registry runs (entries are dropped).
var bridge = &logBridge{sinks: map[*sink]struct{}{}}

type sink struct {
	host string
	log  *slog.Logger
}

type logBridge struct {
	once  sync.Once
	mu    sync.Mutex
	sinks map[*sink]struct{}
}

func (b *logBridge) add(host string, log *slog.Logger) *sink {
	b.once.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.AddHook(b)
	})
	s := &sink{host: host, log: log}
	b.mu.Lock()
	b.sinks[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *logBridge) remove(s *sink) {
	b.mu.Lock()
	delete(b.sinks, s)
	b.mu.Unlock()
}

// Levels implements logrus.Hook.
func (b *logBridge) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook.
func (b *logBridge) Fire(e *logrus.Entry) error {
	host, _ := e.Data["http.request.host"].(string)
	b.mu.Lock()
	var targets []*slog.Logger
	for s := range b.sinks {
		if host == "" || host == s.host {
			targets = append(targets, s.log)
		}
	}
	b.mu.Unlock()
	if len(targets) == 0 {
		return nil
	}
	level := slogLevel(e.Level)
	if host != "" && level == slog.LevelInfo {
		// "response completed" and friends: one line per HTTP request is debug detail for the twin.
		level = slog.LevelDebug
	}
	if status, ok := e.Data["http.response.status"].(int); ok && status >= 400 && status < 500 {
		// distribution logs every 4xx answer as an error, including the HEAD probes a client makes before
		// each push ("manifest unknown"): the client's business, not the registry's.
		level = slog.LevelDebug
	}
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("component", "registry"))
	for k, v := range e.Data {
		if k == "go.version" {
			continue
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	for _, l := range targets {
		l.LogAttrs(ctx, level, e.Message, attrs...)
	}
	return nil
}

func slogLevel(l logrus.Level) slog.Level {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		return slog.LevelError
	case logrus.WarnLevel:
		return slog.LevelWarn
	case logrus.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
