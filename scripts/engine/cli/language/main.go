// pulumi-language-python for the engine scripts/engine.sh builds: the Go module proxy here does not
// serve upstream's language host, so this small one runs Python programs and policy packs for
// `pulumi preview/up/destroy/refresh`, `pulumi install` and `--policy-pack`. It supports what
// Pulumi.yaml and policy/PulumiPolicy.yaml use (toolchain pip, a virtualenv or the python3 on PATH);
// users of the official CLI get the official host.
//
// Protocol: pulumirpc.LanguageRuntime (sdk/v3@v3.259.0 proto/language.proto). Read there: the engine
// passes its address as the last argument (go/common/resource/plugin/langruntime_plugin.go), runs a
// policy pack directory through RunPlugin and reads its port from stdout (plugin.go, and pkg/v3@v3.259.0
// resource/plugin/analyzer_plugin.go). Programs run through the SDK's own pulumi-language-python-exec
// (sdk/v3@v3.259.0 python/cmd/: its flags, PULUMI_CONFIG and exit code 32), which engine.sh copies
// next to this binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is set by engine.sh to the CLI's version.
var version = "0.0.0"

// bailExitCode: the exec script already showed the user an actionable message.
const bailExitCode = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	execScript    string
}

func main() {
	// The engine may pass logging flags (registered by the SDK's logging package) and a tracing
	// endpoint before the engine address.
	flag.String("tracing", "", "Zipkin-compatible tracing endpoint (unused)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-language-python [flags] ENGINE_ADDRESS")
		os.Exit(1)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &host{engineAddress: flag.Arg(0), execScript: filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(server *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(server, h)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// Plugins come from PATH (engine.sh puts the docker and random plugins next to the CLI), so none is
// listed for the engine to download.
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// environment is where a program's Python lives, from the runtime options of Pulumi.yaml or
// PulumiPolicy.yaml.
type environment struct {
	root       string
	virtualenv string // empty: the python3 on PATH
}

func environmentOf(info *pulumirpc.ProgramInfo) (environment, error) {
	options := info.GetOptions().AsMap()
	if toolchain, _ := options["toolchain"].(string); toolchain != "" && toolchain != "pip" {
		return environment{}, fmt.Errorf("runtime option toolchain: %s is not supported by this language host (only pip); "+
			"use the official Pulumi CLI", toolchain)
	}
	env := environment{root: info.GetRootDirectory()}
	if venv, _ := options["virtualenv"].(string); venv != "" {
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(env.root, venv)
		}
		env.virtualenv = venv
	}
	return env, nil
}

func (e environment) python() string {
	if e.virtualenv == "" {
		return "python3"
	}
	return filepath.Join(e.virtualenv, "bin", "python")
}

// ready fails with the fix when the virtualenv is missing: without it the program or policy pack
// cannot even import pulumi.
func (e environment) ready() error {
	if e.virtualenv == "" {
		return nil
	}
	if _, err := os.Stat(e.python()); err != nil {
		return fmt.Errorf("the virtualenv %s does not exist; create it with `pulumi install` in %s "+
			"(or python3 -m venv %s && %s -m pip install -r requirements.txt)", e.virtualenv, e.root, e.virtualenv, e.python())
	}
	return nil
}

// processEnv is the host's environment with the virtualenv activated.
func (e environment) processEnv(extra ...string) []string {
	env := os.Environ()
	if e.virtualenv != "" {
		env = append(env, "VIRTUAL_ENV="+e.virtualenv, "PATH="+filepath.Join(e.virtualenv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return append(env, extra...)
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	env, err := environmentOf(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := env.ready(); err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	configMap := req.GetConfig()
	if configMap == nil { // a stack without settings: the SDK wants an object, not null
		configMap = map[string]string{}
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	program := req.GetInfo().GetEntryPoint()
	if program == "" {
		program = "."
	}
	args := []string{"-u", h.execScript,
		"--monitor", req.GetMonitorAddress(), "--engine", h.engineAddress,
		"--project", req.GetProject(), "--stack", req.GetStack(), "--organization", req.GetOrganization(),
		"--root_directory", req.GetInfo().GetRootDirectory(), "--pwd", req.GetPwd(),
		"--parallel", fmt.Sprint(req.GetParallel()), "--dry_run", fmt.Sprint(req.GetDryRun()),
		program}
	cmd := exec.CommandContext(ctx, env.python(), append(args, req.GetArgs()...)...)
	cmd.Dir = req.GetInfo().GetProgramDirectory()
	cmd.Env = env.processEnv("PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secrets))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exit.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// InstallDependencies makes the virtualenv if it is missing and installs requirements.txt into it.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	env, err := environmentOf(req.GetInfo())
	if err != nil {
		return err
	}
	var mu sync.Mutex
	out := &streamWriter{mu: &mu, send: func(b []byte) error { return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: b}) }}
	errOut := &streamWriter{mu: &mu, send: func(b []byte) error { return stream.Send(&pulumirpc.InstallDependenciesResponse{Stderr: b}) }}
	step := func(name string, args ...string) error {
		cmd := exec.CommandContext(stream.Context(), name, args...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = env.root, env.processEnv(), out, errOut
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return nil
	}
	if env.virtualenv != "" && env.ready() != nil {
		fmt.Fprintf(out, "Creating the virtualenv %s\n", env.virtualenv)
		if err := step("python3", "-m", "venv", env.virtualenv); err != nil {
			return err
		}
	}
	requirements := filepath.Join(env.root, "requirements.txt")
	if _, err := os.Stat(requirements); err != nil {
		fmt.Fprintf(out, "No %s: nothing to install\n", requirements)
		return nil
	}
	return step(env.python(), "-m", "pip", "install", "-r", requirements)
}

// RunPlugin runs a Python policy pack (or plugin) directory: `python -u <dir> <args>`, its output
// streamed back to the engine, which reads the analyzer's port from stdout.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, stream grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]) error {
	env, err := environmentOf(req.GetInfo())
	if err != nil {
		return err
	}
	if err := env.ready(); err != nil {
		return err
	}
	cmd := exec.CommandContext(stream.Context(), env.python(), append([]string{"-u", req.GetInfo().GetProgramDirectory()}, req.GetArgs()...)...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(env.processEnv(), req.GetEnv()...)
	var mu sync.Mutex
	out := &streamWriter{mu: &mu, send: func(b []byte) error {
		return stream.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	}}
	cmd.Stdout = out
	cmd.Stderr = &streamWriter{mu: &mu, send: func(b []byte) error {
		return stream.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	}}
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
		code = exit.ExitCode()
	}
	return stream.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}})
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	env, err := environmentOf(req.GetInfo())
	if err != nil {
		return nil, err
	}
	output, err := exec.Command(env.python(), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", env.python(), err)
	}
	return &pulumirpc.AboutResponse{Executable: env.python(), Version: strings.TrimPrefix(strings.TrimSpace(string(output)), "Python ")}, nil
}

// GetProgramDependencies lists the virtualenv's packages (`pulumi about`).
func (h *host) GetProgramDependencies(_ context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	env, err := environmentOf(req.GetInfo())
	if err != nil {
		return nil, err
	}
	output, err := exec.Command(env.python(), "-m", "pip", "list", "--format", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -m pip list: %w", env.python(), err)
	}
	var listed []struct{ Name, Version string }
	if err := json.Unmarshal(output, &listed); err != nil {
		return nil, err
	}
	response := &pulumirpc.GetProgramDependenciesResponse{}
	for _, dependency := range listed {
		response.Dependencies = append(response.Dependencies, &pulumirpc.DependencyInfo{Name: dependency.Name, Version: dependency.Version})
	}
	return response, nil
}

// streamWriter sends what a child process writes as gRPC stream messages; stdout and stderr share
// one mutex, since a stream must not be sent on concurrently.
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
