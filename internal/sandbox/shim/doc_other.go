//go:build !linux

// Package shim is the sandbox's init; it exists on Linux only.
package shim
