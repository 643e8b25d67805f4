package kernel

import "context"

// ResolvePackage returns pkg, or when empty the concrete package Debian's
// cloud meta-package currently depends on (the cache key of an import).
func ResolvePackage(ctx context.Context, pkg string) (string, error) {
	if pkg != "" {
		return pkg, nil
	}
	return resolveCloudPackage(ctx)
}
