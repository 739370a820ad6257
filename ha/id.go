package ha

import (
	"encoding/json"
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

// encode fills in the default ID and returns the JSON an elector stores as
// the candidate's value, for Observe to read back.
func (c *Candidate) encode() ([]byte, error) {
	if c.ID == "" {
		c.ID = defaultID()
	}
	return json.Marshal(c)
}
