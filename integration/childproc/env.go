package childproc

import (
	"os"
	"strings"
)

// Environ returns this process's environment without the variables whose
// "NAME=value" entry starts with any of drop: Environ("ETCD_") drops every
// ETCD_* variable, Environ("JAVA_TOOL_OPTIONS=") exactly that one.
func Environ(drop ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, prefix := range drop {
			if strings.HasPrefix(kv, prefix) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
