// Package lib is a dependency whose version the cache reads from the built binary's build information.
package lib

// Greeting is what the tool prints.
const Greeting = "hello from lib"
