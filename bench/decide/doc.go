// Package decide holds the decision benchmark and nothing else: warden's
// policy engine against the same rule set written in Rego and evaluated by an
// embedded OPA, at 10, 100 and 1000 rules, with a test that both engines
// agree on every call so that the timings compare like with like.
//
// All of it lives in _test.go files and no warden package imports this one,
// so OPA stays a test-only dependency: it is never linked into the warden
// binary. Run it with
//
//	go test -run=^$ -bench=BenchmarkDecide -benchtime=2s ./bench/decide/
package decide
