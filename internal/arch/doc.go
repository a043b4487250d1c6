// Package arch holds no code, only tests that keep the architecture honest:
// domain packages must not import HTTP, SQL or wiring.
package arch
