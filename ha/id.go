package ha

import (
	"fmt"
	"os"
)

// defaultID names a replica by host name and process id.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
