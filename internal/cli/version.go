package cli

import (
	"fmt"
	"runtime/debug"
)

func runVersion(e *env, args []string) int {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(e.stdout, "warden %s\n", v)
	return exitOK
}
