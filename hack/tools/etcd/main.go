// Command etcd is upstream etcd's server main, built from the Go module proxy
// so the local cluster harness needs no container image or Debian package.
// It lives in its own module so etcd's dependencies never constrain k8s's.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
