package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/internal/output"
)

// completions gives cobra's `ferry completion` scripts the values of flags
// and arguments: every -o its formats, every setting with a fixed set of
// values those values, and every customer argument (integration
// subcommands, check-access --customer) the customers in the registry.
func (a *app) completions(root *cobra.Command) {
	walk(root, func(cmd *cobra.Command) {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			var choices []string
			if o, ok := f.Value.(*output.Flag); ok {
				choices = o.Choices()
			} else {
				choices = config.FlagChoices(f.Name)
			}
			if choices != nil {
				_ = cmd.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp))
			}
		})
		if f := cmd.Flags().Lookup("customer"); f != nil {
			_ = cmd.RegisterFlagCompletionFunc("customer", a.completeCustomers)
		}
		if fields := strings.Fields(cmd.Use); len(fields) > 1 && fields[1] == "CUSTOMER" && cmd.ValidArgsFunction == nil {
			cmd.ValidArgsFunction = func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return a.completeCustomers(c, args, prefix)
			}
		}
	})
}

// completeCustomers lists the registry's customers starting with prefix.
// Completion runs without the command's hooks, so it reads the command's
// settings itself; anything that fails (no Redis, a bad setting) gives no
// completions and says nothing: a shell prompt is no place for errors.
func (a *app) completeCustomers(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	none := cobra.ShellCompDirectiveNoFileComp
	if err := a.cfg.LoadEnv(os.Getenv, a.reads[cmd]...); err != nil {
		return nil, none
	}
	redis.SetLogger(quietRedis{})
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	reg, err := a.registry(ctx)
	if err != nil {
		return nil, none
	}
	all, err := reg.List(ctx)
	if err != nil {
		return nil, none
	}
	var out []string
	for _, in := range all {
		if strings.HasPrefix(in.CustomerID, prefix) {
			out = append(out, in.CustomerID)
		}
	}
	return out, none
}

// quietRedis drops go-redis's own log lines (a pool that cannot dial).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
