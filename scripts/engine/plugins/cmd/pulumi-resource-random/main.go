// Command pulumi-resource-random serves the Terraform random provider through the Pulumi Terraform
// bridge under the tokens of the pulumi_random SDK (RandomPassword, RandomBytes, ...).
//
// pulumi-random's own provider module is not served by the Go module proxy this project can reach,
// so the bridge configuration is declared here; the resources' behaviour is upstream's code.
package main

import (
	"context"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// version is the pulumi_random SDK version this plugin answers for (set by scripts/engine.sh).
var version = "0.0.0-dev"

func providerInfo() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:       pf.ShimProvider(shim.NewProvider()),
		Name:    "random",
		Version: version,
		// Metadata records renames across releases; this build has no history to carry.
		MetadataInfo: tfbridge.NewProviderMetadata([]byte("{}")),
	}
	info.MustComputeTokens(tokens.SingleModule("random_", "index", func(module, name string) (string, error) {
		return tokens.MakeStandard("random")(module, "Random"+name)
	}))
	return info
}

func main() {
	schema := []byte(`{"name":"random","version":"` + version + `"}`)
	pf.Main(context.Background(), "random", providerInfo(), pf.ProviderMetadata{PackageSchema: schema})
}
