package s3server

import (
	"fmt"
	"time"
)

// Profile holds the limits and timings the S3 server runs with. Change Version whenever a value changes.
type Profile struct {
	// Version names this set of values.
	Version string
	// ServerVersion is the versitygw release the tool cache builds (tools/toolcache/pins.go Versitygw).
	ServerVersion string
	// Region is the S3 region the server reports and clients sign for. us-east-1 is versitygw's default
	// (cmd/versitygw --region) and minio-go's when none is set.
	Region string
	// ReadyTimeout bounds the wait for the health endpoint after the process starts. Measured 2026-12-07:
	// versitygw answers in well under a second on 2 cores; the bound leaves room for a loaded machine.
	ReadyTimeout time.Duration
	// ReadyPoll is the interval between readiness probes.
	ReadyPoll time.Duration
	// PortAttempts is how many free ports Start tries: the port is free when chosen and the server binds it
	// a moment later, so another process can take it in between (rare).
	PortAttempts int
	// StopTimeout is how long Stop waits after SIGTERM before it kills the process group.
	StopTimeout time.Duration
	// RequestTimeout bounds one S3 request of Publish, Put or Remove when the caller's context has no
	// deadline.
	RequestTimeout time.Duration
}

// DefaultProfile is the profile Start uses when Options.Profile is nil.
func DefaultProfile() Profile {
	return Profile{
		Version:        "s3server/v1",
		ServerVersion:  "v1.7.0",
		Region:         "us-east-1",
		ReadyTimeout:   30 * time.Second,
		ReadyPoll:      50 * time.Millisecond,
		PortAttempts:   3,
		StopTimeout:    5 * time.Second,
		RequestTimeout: 30 * time.Second,
	}
}

func (p Profile) validate() error {
	switch {
	case p.Version == "" || p.ServerVersion == "" || p.Region == "":
		return fmt.Errorf("s3server: Profile.Version, ServerVersion and Region are required: %w", ErrInvalidOptions)
	case p.ReadyTimeout <= 0 || p.ReadyPoll <= 0 || p.StopTimeout <= 0 || p.RequestTimeout <= 0:
		return fmt.Errorf("s3server: Profile %s: every timeout and poll interval must be positive: %w", p.Version, ErrInvalidOptions)
	case p.PortAttempts < 1:
		return fmt.Errorf("s3server: Profile %s: PortAttempts must be at least 1: %w", p.Version, ErrInvalidOptions)
	}
	return nil
}
