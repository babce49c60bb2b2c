//go:build race

package main

// raceBuild: the test binary, and so the hqd it starts, carries the race
// detector, whose shadow memory and bookkeeping add to hqd's RSS.
const raceBuild = true
