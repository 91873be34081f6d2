//go:build tools

// Package withembed is a wrapper module whose tool's main package is in a dependency that embeds files
// its module does not hold (as flux2's cmd/flux embeds generated manifests): the cache's ModulePatch adds them.
package withembed

import _ "example.com/embedder/cmd/hello"
