package main

import (
	"crypto/rand"
	"fmt"
)

// As in the tutorial's utils.go.
func makeUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	uuid := fmt.Sprintf("%X-%X-%X-%X-%X",
		b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	return uuid, nil
}
