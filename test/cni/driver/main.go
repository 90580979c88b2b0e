// A small libcni driver for vxtun's CNI tests and bench: the runtime side of the CNI
// contract, played by the real library (Debian's libcni 1.1.2 source).
//
//	driver add|check|del CONFLIST NETNS CONTAINERID IFNAME   result JSON on stdout
//	driver gc CONFLIST [CID/IFNAME ...]                      GC with valid attachments
//	driver status CONFLIST                                   STATUS
//	driver cycle CONFLIST NETNS N                            N x (ADD, DEL), ms as JSON
//
// CNI_PATH lists the plugin directories, CNI_CACHE_DIR libcni's cache, CNI_CAP_ARGS
// capability arguments. libcni 1.1.2
// predates GC and STATUS (spec 1.1.0), so those are sent with libcni's invoke package.
// Errors: the plugin's error JSON on stdout, exit 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
)

func fail(err error) {
	var te *types.Error
	if errors.As(err, &te) {
		b, _ := json.Marshal(te)
		fmt.Println(string(b))
	} else {
		b, _ := json.Marshal(map[string]interface{}{"code": -1, "msg": err.Error()})
		fmt.Println(string(b))
	}
	os.Exit(2)
}

func rawExec(ctx context.Context, list *libcni.NetworkConfigList, paths []string, cmd string, extra map[string]interface{}) error {
	var m map[string]interface{}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &m); err != nil {
		return err
	}
	m["name"] = list.Name
	m["cniVersion"] = "1.1.0"
	for k, v := range extra {
		m[k] = v
	}
	conf, _ := json.Marshal(m)
	plugin, err := invoke.FindInPath(m["type"].(string), paths)
	if err != nil {
		return err
	}
	args := &invoke.Args{Command: cmd, Path: strings.Join(paths, ":")}
	return invoke.ExecPluginWithoutResult(ctx, plugin, conf, args, nil)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: driver add|check|del|gc|status|cycle CONFLIST ...")
		os.Exit(64)
	}
	cmd, file := os.Args[1], os.Args[2]
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cfg := libcni.NewCNIConfigWithCacheDir(paths, os.Getenv("CNI_CACHE_DIR"), nil)
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	// CNI_CAP_ARGS: JSON capability arguments (portMappings, bandwidth) for runtimeConfig.
	caps := map[string]interface{}{}
	if s := os.Getenv("CNI_CAP_ARGS"); s != "" {
		if err := json.Unmarshal([]byte(s), &caps); err != nil {
			fail(err)
		}
	}
	rt := func(a []string) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{NetNS: a[0], ContainerID: a[1], IfName: a[2], CapabilityArgs: caps}
	}
	switch cmd {
	case "add":
		res, err := cfg.AddNetworkList(ctx, list, rt(os.Args[3:]))
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if err := cfg.CheckNetworkList(ctx, list, rt(os.Args[3:])); err != nil {
			fail(err)
		}
	case "del":
		if err := cfg.DelNetworkList(ctx, list, rt(os.Args[3:])); err != nil {
			fail(err)
		}
	case "gc":
		valid := []map[string]string{}
		for _, a := range os.Args[3:] {
			p := strings.SplitN(a, "/", 2)
			valid = append(valid, map[string]string{"containerID": p[0], "ifname": p[1]})
		}
		if err := rawExec(ctx, list, paths, "GC", map[string]interface{}{"cni.dev/valid-attachments": valid}); err != nil {
			fail(err)
		}
	case "status":
		if err := rawExec(ctx, list, paths, "STATUS", nil); err != nil {
			fail(err)
		}
	case "cycle":
		n, _ := strconv.Atoi(os.Args[4])
		add, del := make([]float64, 0, n), make([]float64, 0, n)
		for i := 0; i < n; i++ {
			r := rt([]string{os.Args[3], fmt.Sprintf("cycle%d", i), "eth0"})
			t0 := time.Now()
			if _, err := cfg.AddNetworkList(ctx, list, r); err != nil {
				fail(err)
			}
			t1 := time.Now()
			if err := cfg.DelNetworkList(ctx, list, r); err != nil {
				fail(err)
			}
			add = append(add, float64(t1.Sub(t0).Microseconds())/1000)
			del = append(del, float64(time.Since(t1).Microseconds())/1000)
		}
		b, _ := json.Marshal(map[string][]float64{"add": add, "del": del})
		fmt.Println(string(b))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", cmd)
		os.Exit(64)
	}
}
