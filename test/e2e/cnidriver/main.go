// Command cnidriver is a minimal cnitool equivalent used by the tcqos e2e tests.
//
// Why it exists: Debian 12 packages libcni (golang-github-appc-cni-dev, v1.1.2)
// as Go *source* only and ships no cnitool binary, and our CI has no access to
// the Go module proxy. So we build this tiny driver offline with GO111MODULE=off
// against the packaged source (see build.sh). Unlike cnitool it takes the
// conflist file, netns path, ifname and container ID as explicit arguments.
//
// Usage:
//
//	cnidriver add|check|del <conflist-file> <netns-path> <ifname> <containerID>
//
// Environment:
//
//	CNI_PATH       colon-separated plugin dirs (default /usr/lib/cni)
//	CNI_CACHE_DIR  libcni result cache dir (default /tmp/cnidriver-cache);
//	               must be the same for add, check and del
//	CNI_ARGS       optional "K=V;K=V" plugin args
//	CAP_ARGS       optional path to a JSON file with capability args, e.g.
//	               {"bandwidth":{"ingressRate":10000000,"ingressBurst":...}}
//
// On add the result is printed as JSON on stdout. On failure the error goes to
// stderr and the exit code is 1; a CNI plugin error is printed as its JSON
// ({"code":...,"msg":...,"details":...}).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = "usage: cnidriver add|check|del <conflist-file> <netns-path> <ifname> <containerID>"

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
		var cniErr *types.Error
		if errors.As(err, &cniErr) {
			b, _ := json.Marshal(cniErr)
			fmt.Fprintln(os.Stderr, string(b))
		} else {
			fmt.Fprintln(os.Stderr, "cnidriver:", err)
		}
		os.Exit(1)
	}
}

func run(cmd, conflistFile, netns, ifname, containerID string) error {
	list, err := libcni.ConfListFromFile(conflistFile)
	if err != nil {
		return err
	}

	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: ifname}
	if s := os.Getenv("CNI_ARGS"); s != "" {
		for _, kv := range strings.Split(s, ";") {
			parts := strings.SplitN(kv, "=", 2)
			if len(parts) != 2 {
				return fmt.Errorf("invalid CNI_ARGS entry %q (want K=V)", kv)
			}
			rt.Args = append(rt.Args, [2]string{parts[0], parts[1]})
		}
	}
	if f := os.Getenv("CAP_ARGS"); f != "" {
		b, err := ioutil.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &rt.CapabilityArgs); err != nil {
			return fmt.Errorf("parsing CAP_ARGS file %s: %w", f, err)
		}
	}

	path := os.Getenv("CNI_PATH")
	if path == "" {
		path = "/usr/lib/cni"
	}
	cacheDir := os.Getenv("CNI_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = "/tmp/cnidriver-cache"
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(path, ":"), cacheDir, nil)

	ctx := context.Background()
	switch cmd {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		return result.PrintTo(os.Stdout)
	case "check":
		return cni.CheckNetworkList(ctx, list, rt)
	case "del":
		return cni.DelNetworkList(ctx, list, rt)
	default:
		return fmt.Errorf("unknown command %q; %s", cmd, usage)
	}
}
