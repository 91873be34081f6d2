package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
	"github.com/hybridtwin/hybridtwin/twin"
)

// envDetachedChild marks the background `up` that `up --detach` starts.
const envDetachedChild = "HYBRIDTWIN_UP_DETACHED"

func newUpCommand() *cobra.Command {
	var file, stateDir string
	var detach, verbose bool
	cmd := &cobra.Command{
		Use:   "up -f twin.yaml [--detach] [--state-dir DIR]",
		Short: "Start the whole twin a Twin spec describes: hardware, clusters, Gitea, registry, Arc, reconcilers",
		Long: `up validates the Twin spec (every problem at once; nothing starts if there is one), plans the VMs with the
hardware model, starts Gitea, the OCI registry, the Arc fake and every workload cluster in parallel,
publishes the images, seeds the repositories, connects the clusters to Arc, starts a reconciler and an
Arc agent per cluster and creates the GitOps configurations through ARM. Progress goes to standard error.

A plan the capacity planner says does not fit (N-1, the 15% reserve, storage, a limit, an address pool)
is an invalid spec, and the problem names the check; spec.hardware.allowUnfit: true starts such an estate
anyway (every VM must still find a host), to see what a host failure does to it.

up stays in the foreground and serves 'status', 'down', 'host' and 'cluster' on a unix socket in the
twin's state directory ($XDG_STATE_HOME/hybridtwin/<name>, or --state-dir); Ctrl-C stops everything and
removes the state. With --detach it runs in the background (logs in the state directory) and returns once ready.
If any step fails, what started is stopped again and the failed step is named.

Exit codes: 0 ready (or, in the foreground, stopped cleanly), 1 a step failed, 2 the spec is invalid.`,
		Example: `  hybridtwin up -f examples/twin.yaml
  hybridtwin up -f examples/twin.yaml --detach && kubectl --kubeconfig ~/.local/state/hybridtwin/example/kubeconfig --context dev get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return &exitError{2, errors.New("no spec: pass the twin spec with -f twin.yaml (see examples/twin.yaml)")}
			}
			spec, err := twin.LoadSpec(file)
			if err != nil {
				return &exitError{2, err}
			}
			dir, err := stateDirFor(stateDir, spec.Metadata.Name)
			if err != nil {
				return &exitError{2, err}
			}
			if detach && os.Getenv(envDetachedChild) == "" {
				return upDetached(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), file, dir, verbose)
			}
			return upForeground(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), spec, dir, verbose)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the Twin spec (kind Twin), e.g. examples/twin.yaml")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the twin's state directory (default $XDG_STATE_HOME/hybridtwin/<name>)")
	cmd.Flags().BoolVar(&detach, "detach", false, "run the twin in the background and return once it is ready")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log the components' messages to standard error")
	return cmd
}

func upForeground(ctx context.Context, stdout, stderr io.Writer, spec *twin.Spec, dir string, verbose bool) error {
	opts := twin.Options{StateDir: dir, Progress: stderr}
	if verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	t, err := twin.Up(ctx, spec, opts)
	if err != nil {
		return err
	}
	srv, err := twin.ServeControl(t)
	if err != nil {
		downErr := t.Down(context.Background(), false)
		return errors.Join(err, downErr)
	}
	printReady(stdout, t.Info())
	fmt.Fprintf(stderr, "the twin runs until Ctrl-C or `hybridtwin down --state-dir %s`\n", t.StateDir())
	var downErr error
	select {
	case <-t.Done(): // `hybridtwin down` stopped it through the control socket
	case <-ctx.Done():
		fmt.Fprintln(stderr, "stopping the twin...")
		downErr = t.Down(context.Background(), false)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the down request's reply is already written
	defer cancel()
	_ = srv.Close(closeCtx)
	if downErr != nil {
		return downErr
	}
	fmt.Fprintln(stderr, "twin stopped")
	return nil
}

func printReady(w io.Writer, i twin.Info) {
	fmt.Fprintf(w, "twin %s is ready (in %s)\n", i.Name, i.ReadyAfter)
	fmt.Fprintf(w, "  kubeconfig:  %s (contexts: %v)\n", i.Kubeconfig, i.Contexts)
	fmt.Fprintf(w, "  gitea:       %s (admin token in %s)\n", i.GiteaURL, i.GiteaToken)
	fmt.Fprintf(w, "  registry:    %s\n", i.Registry)
	fmt.Fprintf(w, "  arc:         %s\n", i.ArcEndpoint)
	fmt.Fprintf(w, "  control:     %s (pid %d)\n", i.Socket, i.PID)
	if len(i.Contexts) > 0 {
		// Flux's objects live in every workload cluster, whichever engine runs: the usual tools read them.
		c := i.Contexts[0]
		fmt.Fprintf(w, "  try:         kubectl --kubeconfig %s --context %s get gitrepositories,kustomizations -A\n", i.Kubeconfig, c)
		fmt.Fprintf(w, "               %s --kubeconfig %s --context %s get all -A\n", fluxCLI(), i.Kubeconfig, c)
	}
}

// fluxCLI is the flux CLI of the tool cache as a command to type: its path once built, else a note on
// how to build it (the binary is not on PATH either way).
func fluxCLI() string {
	c, err := toolcache.New()
	if err != nil {
		return "flux"
	}
	if st := c.Stat(context.Background(), toolcache.FluxCLI); st.Built {
		return c.Path(toolcache.FluxCLI)
	}
	return "flux (not built yet: go run ./cmd/hybridtwin tools build flux, then " + c.Path(toolcache.FluxCLI) + ")"
}

// upDetached starts `hybridtwin up` again in its own session, logging to the state directory, and waits
// until its control socket answers (ready), it exits (failed: its log is shown), or Ctrl-C (it is stopped).
func upDetached(ctx context.Context, stdout, stderr io.Writer, file, dir string, verbose bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	absSpec, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if _, err := twin.Dial(dir); err == nil {
		return fmt.Errorf("%w in %s; stop it with `hybridtwin down --state-dir %s`", twin.ErrRunning, dir, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(dir, twin.DetachedLogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"up", "-f", absSpec, "--state-dir", dir}
	if verbose {
		args = append(args, "-v")
	}
	child := exec.Command(exe, args...)
	child.Env = append(os.Environ(), envDetachedChild+"=1")
	child.Stdout, child.Stderr = logf, logf
	// Its own session: no controlling terminal, so closing this shell does not stop the twin.
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start the background twin: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	prof, _ := twin.RunProfileFor("")
	tick := time.NewTicker(prof.ReadyPoll)
	defer tick.Stop()
	deadline := time.After(prof.ReadyTimeout)
	fmt.Fprintf(stderr, "starting the twin in the background (pid %d, log %s)...\n", child.Process.Pid, logPath)
	for {
		select {
		case err := <-exited:
			showLog(stderr, logf)
			return fmt.Errorf("the background twin exited before it was ready (%v); its log is above", err)
		case <-ctx.Done():
			_ = child.Process.Signal(syscall.SIGINT) // it tears down what it started
			<-exited
			showLog(stderr, logf)
			return ctx.Err()
		case <-deadline:
			_ = child.Process.Signal(syscall.SIGINT)
			<-exited
			showLog(stderr, logf)
			return fmt.Errorf("the background twin was not ready after %s; stopped it", prof.ReadyTimeout)
		case <-tick.C:
			r, err := twin.Dial(dir)
			if err != nil {
				continue
			}
			r.Close()
			info, err := twin.ReadInfo(dir)
			if err != nil {
				return fmt.Errorf("the twin is up but its %s is unreadable: %w", twin.InfoFile, err)
			}
			printReady(stdout, *info)
			fmt.Fprintf(stderr, "running in the background; stop it with `hybridtwin down --state-dir %s`\n", dir)
			return child.Process.Release()
		}
	}
}

func showLog(w io.Writer, f *os.File) {
	if _, err := f.Seek(0, io.SeekStart); err == nil {
		_, _ = io.Copy(w, f)
	}
}

// stateDirFor is --state-dir, or the default state directory of the named twin.
func stateDirFor(flag, name string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	return twin.DefaultStateDir(name)
}
