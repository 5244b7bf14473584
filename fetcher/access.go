package fetcher

import "github.com/ferryworks/ferry/credcache"

// Access is how a process reaches customers' objects: the integration
// registry, the credential cache, and the Copier reading through both.
type Access struct {
	Registry *credcache.Registry
	Cache    *credcache.Cache
	Copier   *Copier
}

// NewAccess builds the registry and the credential cache from one set of
// credcache options, attaches the cache to the registry (a change to a
// customer drops this process's cached entries for it), and makes the
// Copier of opts read through them: opts.Integrations and opts.Credentials
// are set here.
func NewAccess(cred credcache.Options, opts Options) (Access, error) {
	registry, err := credcache.NewRegistry(cred)
	if err != nil {
		return Access{}, err
	}
	cache, err := credcache.New(cred)
	if err != nil {
		return Access{}, err
	}
	registry.AttachCache(cache)
	opts.Integrations, opts.Credentials = registry, cache
	copier, err := New(opts)
	if err != nil {
		return Access{}, err
	}
	return Access{Registry: registry, Cache: cache, Copier: copier}, nil
}
