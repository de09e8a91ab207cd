package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// kubelet plays the kubelet's side of plugin registration and DRA calls:
// like the kubelet's plugin manager it finds registration sockets in the
// registry directory, asks each for its endpoint and routes every DRA call
// to the plugin instance that registered last. During a DaemonSet surge
// that is the new pod; when the old pod goes, nothing changes for callers.
type kubelet struct {
	regDir string

	mu      sync.Mutex
	current *endpoint
	seen    map[string]bool
}

// endpoint is one registered plugin instance.
type endpoint struct {
	regSocket, draSocket string
	conn                 *grpc.ClientConn
	dra                  drapb.DRAPluginClient
}

func newKubelet(regDir string) *kubelet {
	return &kubelet{regDir: regDir, seen: map[string]bool{}}
}

// waitRegistration waits for a registration socket not seen before,
// registers that instance and routes calls to it from then on.
func (k *kubelet) waitRegistration(ctx context.Context, timeout time.Duration) (*endpoint, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		socks, err := filepath.Glob(filepath.Join(k.regDir, "*-reg.sock"))
		if err != nil {
			return nil, fmt.Errorf("registry dir: %w", err)
		}
		for _, s := range socks {
			if k.seen[s] {
				continue
			}
			ep, err := register(ctx, s)
			if err != nil {
				continue // not serving yet
			}
			k.seen[s] = true
			k.mu.Lock()
			k.current = ep
			k.mu.Unlock()
			return ep, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no new plugin registered in %s within %s", k.regDir, timeout)
}

// register does what the kubelet does with a registration socket: GetInfo,
// check the driver, connect to its DRA endpoint, confirm registration.
func register(ctx context.Context, regSocket string) (*endpoint, error) {
	rc, err := grpc.NewClient("unix://"+regSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", regSocket, err)
	}
	defer func() { _ = rc.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	reg := registerapi.NewRegistrationClient(rc)
	info, err := reg.GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetInfo %s: %w", regSocket, err)
	}
	if info.Name != v1alpha1.DriverName || info.Type != registerapi.DRAPlugin {
		return nil, fmt.Errorf("%s registers %s %q, want %s %q", regSocket, info.Type, info.Name, registerapi.DRAPlugin, v1alpha1.DriverName)
	}
	if _, err := os.Stat(info.Endpoint); err != nil {
		return nil, fmt.Errorf("endpoint of %s: %w", regSocket, err)
	}
	conn, err := grpc.NewClient("unix://"+info.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", info.Endpoint, err)
	}
	if _, err := reg.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("NotifyRegistrationStatus %s: %w", regSocket, err)
	}
	return &endpoint{regSocket: regSocket, draSocket: info.Endpoint, conn: conn, dra: drapb.NewDRAPluginClient(conn)}, nil
}

func (k *kubelet) endpoint() (*endpoint, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current == nil {
		return nil, errors.New("no plugin registered")
	}
	return k.current, nil
}

// prepare calls NodePrepareResources for one claim on the current plugin
// and returns its CDI device IDs and the DRA socket that served the call.
func (k *kubelet) prepare(ctx context.Context, c claimRef) ([]string, string, error) {
	ep, err := k.endpoint()
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := ep.dra.NodePrepareResources(ctx, &drapb.NodePrepareResourcesRequest{Claims: []*drapb.Claim{c.pb()}})
	if err != nil {
		return nil, ep.draSocket, fmt.Errorf("NodePrepareResources: %w", err)
	}
	res := resp.Claims[c.uid]
	switch {
	case res == nil:
		return nil, ep.draSocket, fmt.Errorf("no result for claim %s", c.uid)
	case res.Error != "":
		return nil, ep.draSocket, fmt.Errorf("prepare %s: %s", c.name, res.Error)
	}
	var ids []string
	for _, d := range res.Devices {
		ids = append(ids, d.CdiDeviceIds...)
	}
	return ids, ep.draSocket, nil
}

// unprepare calls NodeUnprepareResources for one claim on the current plugin.
func (k *kubelet) unprepare(ctx context.Context, c claimRef) (string, error) {
	ep, err := k.endpoint()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := ep.dra.NodeUnprepareResources(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: []*drapb.Claim{c.pb()}})
	if err != nil {
		return ep.draSocket, fmt.Errorf("NodeUnprepareResources: %w", err)
	}
	if res := resp.Claims[c.uid]; res != nil && res.Error != "" {
		return ep.draSocket, fmt.Errorf("unprepare %s: %s", c.name, res.Error)
	}
	return ep.draSocket, nil
}

// closeAll drops the connections of the endpoints.
func (k *kubelet) closeAll(eps ...*endpoint) {
	for _, ep := range eps {
		if ep != nil {
			_ = ep.conn.Close()
		}
	}
}

type claimRef struct{ namespace, name, uid string }

func (c claimRef) pb() *drapb.Claim {
	return &drapb.Claim{Namespace: c.namespace, Name: c.name, Uid: c.uid}
}

// socketOwner names the plugin instance of a DRA socket by its pod UID
// (dra-<uid>.sock, kubeletplugin.RollingUpdate).
func socketOwner(draSocket string) string {
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(draSocket), "dra-"), ".sock")
}
