// Package shim exposes the Terraform Docker provider, which upstream keeps in an internal package.
// scripts/engine.sh copies this file into its copy of the upstream module.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns the upstream provider, as terraform-provider-docker's own main does.
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
