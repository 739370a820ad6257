package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/cmd/regent/internal/replica"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run one replica: campaign for leadership and, while leading, run the framework",
		Long: `Run one replica. Start several (3 is usual) with the same --name and store:
they elect a leader; the others stay warm, forward API requests to it and take
over within about --election-ttl (etcd) or half the --zk-session-timeout
(ZooKeeper) if it fails, or at once if it stops gracefully (SIGTERM).

Every flag may also come from the environment as REGENT_<FLAG> (upper case,
'-' as '_'), or from the YAML file named by --config; a flag on the command
line wins over the environment, which wins over the file.

HTTP endpoints: / (status page), /v1/... (REST API), /healthz, /readyz,
/metrics.`,
		Args: cobra.NoArgs,
	}
	cfg := config.Register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cfg.Load(cmd.Flags(), os.LookupEnv); err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		log, err := newLogger(cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		defer log.Sync()
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return runReplica(ctx, cfg, log.With(zap.String("replica", cfg.ID)))
	}
	return cmd
}

func runReplica(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	r, err := replica.Open(cfg, log, replica.Options{})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

func newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	if format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	return zc.Build()
}
