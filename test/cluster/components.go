package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
)

// ports are the loopback ports of one cluster, chosen free at Start.
type ports struct {
	EtcdClient    int `json:"etcdClient"`
	EtcdPeer      int `json:"etcdPeer"`
	APIServer     int `json:"apiServer"`
	Scheduler     int `json:"scheduler"`
	ControllerMgr int `json:"controllerManager"`
	Kwok          int `json:"kwok"`
}

// Ports are drawn below the kernel's ephemeral range (32768+ on Linux), so
// the outgoing connections of other clusters on this machine cannot take
// them between this check and the component's bind; each is verified free
// by listening on it, and held until all are chosen so none repeats.
const (
	portMin = 20000
	portMax = 32000
)

func freePorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	next := func() (int, error) {
		for range 200 {
			port := portMin + rand.IntN(portMax-portMin)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				continue
			}
			ls = append(ls, l)
			return port, nil
		}
		return 0, fmt.Errorf("find a free port: none of 200 tries in %d-%d was free", portMin, portMax)
	}
	var p ports
	for _, dst := range []*int{&p.EtcdClient, &p.EtcdPeer, &p.APIServer, &p.Scheduler, &p.ControllerMgr, &p.Kwok} {
		n, err := next()
		if err != nil {
			return p, err
		}
		*dst = n
	}
	return p, nil
}

func loopbackURL(scheme string, port int) string {
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// component is one control-plane process and how to tell it is ready.
type component struct {
	name   string
	args   []string
	health string // HTTPS URL polled until it returns 200; "" for etcd
}

func (c *Cluster) components() []component {
	p, s := c.Ports, c.pki
	kc := c.kubeconfig
	etcdURL := loopbackURL("http", p.EtcdClient)
	peerURL := loopbackURL("http", p.EtcdPeer)
	clientFlags := func(port int) []string {
		return []string{
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
			"--kube-api-qps=" + strconv.Itoa(c.opts.KubeAPIQPS),
			"--kube-api-burst=" + strconv.Itoa(c.opts.KubeAPIBurst),
		}
	}
	comps := []component{{
		name: "etcd",
		args: []string{
			"--name=tierra", "--data-dir=" + filepath.Join(c.opts.StateDir, "etcd"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=tierra=" + peerURL, "--unsafe-no-fsync=true",
		},
		health: etcdURL + "/health",
	}, {
		name: "kube-apiserver",
		args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			// The default reconciler rejects a loopback advertise address.
			"--endpoint-reconciler-type=none",
			"--secure-port=" + strconv.Itoa(p.APIServer),
			"--tls-cert-file=" + s.ServingCert, "--tls-private-key-file=" + s.ServingKey,
			"--client-ca-file=" + s.CACert,
			"--token-auth-file=" + s.TokenFile, "--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + s.SAPub, "--service-account-signing-key-file=" + s.SAKey,
			"--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
		},
		health: loopbackURL("https", p.APIServer) + "/readyz",
	}, {
		name:   "kube-scheduler",
		args:   clientFlags(p.Scheduler),
		health: loopbackURL("https", p.Scheduler) + "/healthz",
	}, {
		name: "kube-controller-manager",
		args: append(clientFlags(p.ControllerMgr),
			"--service-account-private-key-file="+s.SAKey, "--root-ca-file="+s.CACert,
			"--use-service-account-credentials=false",
		),
		health: loopbackURL("https", p.ControllerMgr) + "/healthz",
	}}
	c.addGates(comps)
	if c.opts.Kwok {
		comps = append(comps, c.kwokComponent())
	}
	return comps
}

func (c *Cluster) kwokComponent() component {
	args := []string{
		"--kubeconfig=" + c.kubeconfig,
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--server-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Kwok)),
		"--node-ip=127.0.0.1",
	}
	for _, s := range kwokStages {
		args = append(args, "--config="+filepath.Join(c.opts.BinDir, "kwok-stages", s))
	}
	// kwok serves plain HTTP and HTTPS on one port.
	return component{name: "kwok", args: args, health: loopbackURL("http", c.Ports.Kwok) + "/healthz"}
}

// addGates appends Options.FeatureGates to the Kubernetes components and
// Options.RuntimeConfig to kube-apiserver (etcd takes neither).
func (c *Cluster) addGates(comps []component) {
	for i := range comps {
		if comps[i].name == "etcd" {
			continue
		}
		if c.opts.FeatureGates != "" {
			comps[i].args = append(comps[i].args, "--feature-gates="+c.opts.FeatureGates)
		}
		if c.opts.RuntimeConfig != "" && comps[i].name == "kube-apiserver" {
			comps[i].args = append(comps[i].args, "--runtime-config="+c.opts.RuntimeConfig)
		}
	}
}
