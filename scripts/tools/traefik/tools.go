//go:build tools

// Traefik is built from this module (its own go.mod has replace directives, which `go install`
// refuses), so the tests can run the real proxy with our generated configuration.
package traefik

import _ "github.com/traefik/traefik/v3/cmd/traefik"
