// Command gatehouse is the Gatehouse API gateway.
//
//	gatehouse run [-c FILE]        serve (default gatehouse.yaml)
//	gatehouse validate -c FILE     check a configuration, listing every error
//	gatehouse schema               print the configuration's JSON Schema
//	gatehouse version              print the version
//	gatehouse consumers …          manage consumers through the admin API
//	gatehouse keys …               manage API keys through the admin API
//	gatehouse admin-token          print a new admin token and its hash
//	gatehouse policy test -c FILE CASES  run policy test cases offline
//	gatehouse explain -c FILE PATH       explain the decision for one request
//	gatehouse dev-ca [-dir DIR]          write a development CA and certificates
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const usage = `Gatehouse — an authentication-first API gateway.

Usage:
  gatehouse <command> [flags]

Commands:
  run          Run the gateway (default config: gatehouse.yaml)
  validate     Check a configuration file and list every error with file:line:column
  schema       Print the JSON Schema of the configuration file
  version      Print the version
  consumers    Create, list, show and delete consumers (admin API)
  keys         Create, list, show, rotate and revoke API keys (admin API)
  tokens       Revoke access tokens, list and remove revocations (admin API)
  admin-token  Print a new admin token and its hash for admin.token_hash
  policy test  Run routing, authentication and policy test cases offline (CI)
  explain      Explain the route, authentication and policy decision for one request
  dev-ca       Write a development CA, server and client certificates to try mutual TLS
  users        Hash passwords and manage the users file of the basic method

Run "gatehouse <command> --help" for a command's flags.
`

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // invalid configuration, failed start
	exitUsage = 2 // bad command line
)

func runCLI(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], stdout, stderr)
	case "version":
		return cmdVersion(args[1:], stdout, stderr)
	case "consumers":
		return cmdConsumers(args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(args[1:], stdout, stderr)
	case "tokens":
		return cmdTokens(args[1:], stdout, stderr)
	case "admin-token":
		return cmdAdminToken(args[1:], stdout, stderr)
	case "policy":
		return cmdPolicy(args[1:], stdout, stderr)
	case "explain":
		return cmdExplain(args[1:], stdout, stderr)
	case "dev-ca":
		return cmdDevCA(args[1:], stdout, stderr)
	case "users":
		return cmdUsers(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// newFlags builds a command's flag set; --help prints its usage to stdout
// and exits 0, a bad flag prints it to stderr and exits 2.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatehouse %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse handles --help (exit 0 with usage on stdout) versus errors (2).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (exit int, stop bool) {
	// flag prints its own complaint and usage while parsing; hold it back
	// so --help goes to stdout once and errors to stderr once.
	stderr := fs.Output()
	var parseOut bytes.Buffer
	fs.SetOutput(&parseOut)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	case err != nil:
		_, _ = parseOut.WriteTo(stderr)
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "gatehouse %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, true
	}
	return 0, false
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run [-c FILE]\n\nRun the gateway until SIGTERM or SIGINT (drains in-flight requests).\nSIGHUP or a change of the file reloads the configuration.", stderr)
	path := fs.String("c", "gatehouse.yaml", "configuration file")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	cfg, file, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse: invalid configuration:\n%v\n", err)
		return exitError
	}
	level := new(slog.LevelVar)
	logger := newLogger(stderr, cfg.Log.Format, level)
	gw, err := gateway.New(cfg, file, gateway.Options{
		ConfigPath: *path,
		Log:        logger,
		LogLevel:   level,
		Pipeline:   pipeline.Options{Log: logger, Stdout: stdout, Stderr: stderr, UserAgent: keyset.UserAgent(versionString())},
		Version:    versionString(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return exitError
	}
	logger.Info("gatehouse: started", "version", versionString(), "config", *path)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		// After the first signal, restore the default action so a second
		// SIGTERM or Ctrl-C stops a drain that takes too long.
		<-ctx.Done()
		stop()
	}()
	if err := gw.Run(ctx); err != nil {
		logger.Error("gatehouse: shutdown incomplete", "error", err)
		return exitError
	}
	return exitOK
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate -c FILE\n\nCheck a configuration file: exit 0 if valid, or exit 1 listing every\nerror as file:line:column: key: message.", stderr)
	path := fs.String("c", "gatehouse.yaml", "configuration file")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	cfg, file, err := config.Load(*path)
	if err == nil {
		// Compile too: a config is valid only if the gateway can build it.
		var plan *pipeline.Plan
		plan, err = pipeline.Build(cfg, file, pipeline.Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true})
		if err == nil {
			plan.Close()
		}
	}
	if err != nil {
		if errs, ok := config.AsErrors(err); ok {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
			fmt.Fprintf(stderr, "%d error(s)\n", len(errs))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return exitError
	}
	fmt.Fprintf(stdout, "%s: valid (%d listener(s), %d route(s))\n", *path, len(cfg.Listeners), len(cfg.Routes))
	return exitOK
}

func cmdSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", "schema\n\nPrint the JSON Schema (draft 2020-12) of the configuration file.", stderr)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	_, _ = stdout.Write(config.JSONSchema())
	return exitOK
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version\n\nPrint the version.", stderr)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	fmt.Fprintf(stdout, "gatehouse %s\n", versionString())
	return exitOK
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return v + " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "dev"
}
