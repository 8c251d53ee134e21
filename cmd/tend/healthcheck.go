package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newHealthcheckCommand(cl *cli) *cobra.Command {
	timeout := 3 * time.Second
	cmd := &cobra.Command{
		Use:   "healthcheck [URL]",
		Short: "exit 0 when a tend server or worker is ready (container healthchecks)",
		Long: `Asks a tend server or worker whether it is ready and exits 0 when it answers 200, 1 otherwise,
printing why. URL defaults to /readyz on this process's TEND_METRICS_ADDR (port 9090, a worker's
default, when unset): run inside a container it checks the part beside it. tend's image has no shell or wget,
so docker-compose's healthchecks run this.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return runHealthcheck(cmd.Context(), target, timeout, cl.stdout, cl.getenv)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "give up after this long")
	return cmd
}

// runHealthcheck GETs target (or the readiness endpoint of TEND_METRICS_ADDR) and succeeds on 200.
func runHealthcheck(ctx context.Context, target string, timeout time.Duration, stdout io.Writer, getenv func(string) string) error {
	if target == "" {
		addr, _, err := metricsAddrEnv(getenv, workerMetricsAddr)
		if err != nil {
			return fmt.Errorf("%w: %v; give the URL to check", errUsage, err)
		}
		if addr == "" {
			return fmt.Errorf("%w: TEND_METRICS_ADDR is off: this part serves no /readyz; give the URL to check", errUsage)
		}
		host, port, _ := net.SplitHostPort(addr) // metricsAddrEnv checked it
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		target = "http://" + net.JoinHostPort(host, port) + "/readyz"
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL", errUsage, target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
