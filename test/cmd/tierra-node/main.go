// Command tierra-node runs one simulated GPU node (package nodesim) against
// a cluster until SIGTERM: the real tierra-kubelet-plugin on a fake machine,
// driven by the kubelet's own DRA manager, with a minimal pod lifecycle.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/test/nodesim"
)

const usage = `tierra-node simulates one GPU node for the local control plane.

It registers the Node (Ready, with a Lease heartbeat), runs
tierra-kubelet-plugin on a fake machine (restarting it if it exits), registers
it with the kubelet's own DRA manager through the kubelet's plugin manager,
and runs the pods bound to the node: their ResourceClaims are prepared and the
pod is reported Running; a deleted pod's claims are unprepared before the pod
goes. Prepare failures become Warning events on the pod. No containers run.

Usage: tierra-node --name NODE --machine fake:NAME --kubeconfig FILE --plugin-binary FILE --dir DIR [flags]

Flags:
`

func main() {
	opts, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tierra-node:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	n, err := nodesim.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tierra-node:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	if err := n.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "tierra-node: stop:", err)
		os.Exit(1)
	}
}

func parse(args []string) (nodesim.Options, error) {
	opts := nodesim.Options{Log: os.Stdout}
	fs := flag.NewFlagSet("tierra-node", flag.ContinueOnError)
	fs.StringVar(&opts.Name, "name", "", "Node name (required)")
	fs.StringVar(&opts.Machine, "machine", "", "fake machine, fake:<name> (required)")
	fs.BoolVar(&opts.MIGEnabled, "mig-enabled", false, "put every MIG-capable GPU into MIG mode before the plugin starts")
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig for the node and its plugin (required)")
	fs.StringVar(&opts.PluginBinary, "plugin-binary", "", "tierra-kubelet-plugin executable (required)")
	fs.StringVar(&opts.Dir, "dir", "", "the node's directory: sockets, checkpoint, CDI specs, fake machine state, plugin log (required; short, for unix sockets)")
	fs.StringVar(&opts.MetricsAddress, "metrics-address", "", "host:port where the node's plugin serves /metrics (port 0: a free port); empty: none")
	labels := fs.String("labels", "", "Node labels, k=v,k=v")
	pluginArgs := fs.String("plugin-args", "", "extra plugin flags, space-separated (e.g. -v=4)")
	images := fs.String("images", "", "image=executable,...: pods whose every container image is listed run as host processes of the executable (the plugin's MPS daemon pods); others are only reported Running")
	klog.InitFlags(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if *labels != "" {
		opts.Labels = map[string]string{}
		for _, kv := range strings.Split(*labels, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return opts, fmt.Errorf("--labels: %q is not key=value", kv)
			}
			opts.Labels[k] = v
		}
	}
	opts.PluginArgs = strings.Fields(*pluginArgs)
	if *images != "" {
		opts.Images = map[string]string{}
		for _, kv := range strings.Split(*images, ",") {
			img, exe, ok := strings.Cut(kv, "=")
			if !ok || img == "" || exe == "" {
				return opts, fmt.Errorf("--images: %q is not image=executable", kv)
			}
			opts.Images[img] = exe
		}
	}
	return opts, nil
}
