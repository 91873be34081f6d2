// Command broken does not compile: the cache tests use it to check that a failed build leaves nothing.
package main

func main() { undefinedFunctionForTheFailedBuildTest() }
