package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// tokenBytes is how much randomness a new token carries: 256 bits, 43
// characters of URL-safe base64 (no character a header or a shell quotes).
const tokenBytes = 32

func runTokenCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "token", "", "Prints a new random API token, for http.token (or EVINDEX_TOKEN):\n"+
		"  export EVINDEX_TOKEN=$(evindex token)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("token: takes no arguments")
	}
	fmt.Fprintln(e.stdout, newToken())
	return nil
}

// newToken is a random token from the system's secure random source.
func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
