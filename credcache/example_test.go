package credcache_test

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/credcache"
)

// Enabling delegated access for a customer: the external ID is generated,
// sealed in Redis, and printed once with the trust policy the customer pastes
// into their role. (It needs Redis and FERRY_CACHE_KEY, so it has no output
// to check.)
func ExampleRegistry_Enable() {
	ctx := context.Background()
	keys, err := credcache.ParseKeys(os.Getenv("FERRY_CACHE_KEY"))
	if err != nil {
		fmt.Println(err) // says how to make a key
		return
	}
	reg, err := credcache.NewRegistry(credcache.Options{
		Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}),
		Keys:  keys,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := reg.Enable(ctx, "acme", "111122223333", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("role:", in.RoleARN())
	fmt.Println(credcache.TrustPolicy("999988887777", in.ExternalID))
}

// Reading a delegated customer's object through one shared S3 client: the
// cache's provider is a per-call option, never wrapped in
// aws.NewCredentialsCache. (It needs Redis and AWS, so it has no output to
// check.)
func ExampleCache_Provider() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := credcache.ParseKeys(os.Getenv("FERRY_CACHE_KEY"))
	if err != nil {
		fmt.Println(err)
		return
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	opts := credcache.Options{Redis: rdb, Keys: keys, STS: sts.NewFromConfig(cfg)}
	reg, err := credcache.NewRegistry(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := credcache.New(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg.AttachCache(cache)
	shared := s3.NewFromConfig(cfg) // the fleet's one client

	in, err := reg.Get(ctx, "acme")
	if err != nil || !in.Enabled {
		fmt.Println("not delegated:", err)
		return
	}
	out, err := shared.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("img/1.jpg")},
		func(o *s3.Options) { o.Credentials = cache.Provider(in) })
	if err != nil {
		fmt.Println(err) // an *credcache.AssumeRoleError when the role refused
		return
	}
	defer out.Body.Close()
	fmt.Println(aws.ToString(out.ContentType))
}
