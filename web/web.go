// Package web holds the web console's assets — html/template pages, the
// style sheet and a little vanilla JavaScript — embedded in the binary with
// go:embed, so there is no front-end build step and nothing to deploy
// beside `warden`. The handlers that render them live in internal/server
// (console.go); nothing here knows about HTTP.
package web

import "embed"

// FS holds templates/*.html (one page each, rendered inside layout.html)
// and static/* (served under /console/static/).
//
//go:embed templates/*.html static/*
var FS embed.FS
