// Command pulumi-resource-docker serves the Terraform Docker provider (kreuzwerker) through the
// Pulumi Terraform bridge under the tokens and property names of the pulumi_docker SDK.
//
// pulumi-docker's own provider module is not served by the Go module proxy this project can reach,
// so the bridge configuration is declared here: every behaviour that decides a diff (schemas,
// ForceNew, read-back normalisation, defaults) is upstream's code, unchanged.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// version is the pulumi_docker SDK version this plugin answers for (set by scripts/engine.sh).
var version = "0.0.0-dev"

func providerInfo() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(shim.NewProvider(version)),
		Name:    "docker",
		Version: version,
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"DOCKER_HOST"},
				Value:   "unix:///var/run/docker.sock",
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		// The SDK's names for the resources whose Terraform names differ.
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_config": {Tok: "docker:index/serviceConfig:ServiceConfig"},
			"docker_image":  {Tok: "docker:index/remoteImage:RemoteImage", Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}},
			"docker_container": {
				Tok:                 "docker:index/container:Container",
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
		},
	}
	info.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard("docker")))
	info.SetAutonaming(255, "-")
	return info
}

func main() {
	tfbridge.Main("docker", version, providerInfo(), nil)
}
