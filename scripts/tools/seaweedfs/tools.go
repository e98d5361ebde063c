//go:build tools

// SeaweedFS's weed is built from this module (its own go.mod has a replace directive, which `go
// install` refuses), so the test swarm runs the real object store. The proxy serves SeaweedFS as
// pseudo-versions of upstream commits only.
package seaweedfs

import _ "github.com/seaweedfs/seaweedfs/weed"
