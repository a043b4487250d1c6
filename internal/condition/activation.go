package condition

import "cel.dev/cel-go/interpreter"

// activation adapts Input to CEL's interpreter.Activation without building a
// map per evaluation.
type activation struct{ in *Input }

func (a activation) ResolveName(name string) (any, bool) { return a.in.ResolveName(name) }
func (a activation) Parent() interpreter.Activation      { return nil }
