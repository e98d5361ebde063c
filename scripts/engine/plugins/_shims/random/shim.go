// Package shim exposes the Terraform random provider, which upstream keeps in an internal package.
// scripts/engine.sh copies this file into its copy of the upstream module.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream provider, as terraform-provider-random's own main does.
func NewProvider() provider.Provider {
	return upstream.New()
}
