//go:build tools

// The Pulumi CLI is built from this module, so its dependencies are pinned in go.mod and go.sum.
package cli

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
