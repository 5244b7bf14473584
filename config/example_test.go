package config_test

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/ferryworks/ferry/config"
)

// A command loads the environment, lets its flags override it, and validates
// only what it needs; every bad setting is reported at once.
func ExampleConfig_Validate() {
	env := map[string]string{
		"FERRY_QUEUE_URL":   "http://127.0.0.1:4566/000000000000/ferry-tasks",
		"FERRY_CACHE_KEY":   "abcdefghijklmnopqrstuvwxyz",
		"FERRY_CONCURRENCY": "lots",
	}
	cfg, _ := config.Load(func(k string) string { return env[k] }) // Validate repeats Load's problems

	fs := pflag.NewFlagSet("enqueue", pflag.ContinueOnError)
	cfg.RegisterFlags(fs, config.Groups()...)
	_ = fs.Parse([]string{"--bucket", "ferry-internal"})

	err := cfg.Validate(config.NeedQueue, config.NeedRedis, config.NeedCacheKey)
	fmt.Println(err)

	var ve *config.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(len(ve.Problems), ve.Problems[0].Var)
	}
	// Output:
	// invalid configuration (3 problems):
	//   FERRY_CONCURRENCY="lots": want a positive integer
	//   FERRY_REDIS_URL="": want a redis:// URL (required by this command)
	//   FERRY_CACHE_KEY="abcd…(masked)": want base64 of 32 bytes, comma-separated for rotation (make one with: openssl rand -base64 32)
	// 3 FERRY_CONCURRENCY
}
