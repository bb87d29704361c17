// Command testcluster is the Kubernetes control plane the voice-edge tests run against:
// etcd (embedded), kube-apiserver, kube-controller-manager, kube-scheduler and kubectl,
// built from the Go module proxy into one binary (busybox style: the first argument names
// the component). Nothing here is voice-edge logic; it only wires upstream entry points.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testcluster etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubectl [flags]")
		os.Exit(2)
	}
	dieWithParent()
	component := os.Args[1]
	// Each upstream command parses os.Args[1:] itself; drop our component name.
	os.Args = append([]string{component}, os.Args[2:]...)
	switch component {
	case "etcd":
		os.Exit(runEtcd(os.Args[1:]))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		// kubectl prints its own errors (and sets the exit code) through CheckErr, as upstream's main does.
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			cmdutil.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "testcluster: unknown component %q\n", component)
		os.Exit(2)
	}
}

// dieWithParent makes the kernel kill this process when the test process that started it dies
// (TESTCLUSTER_PARENT_PID names that process): a test runner killed with SIGKILL would otherwise
// leave etcd and the API server running. Without the variable (kubectl in a shell) it does nothing.
func dieWithParent() {
	parent, err := strconv.Atoi(os.Getenv("TESTCLUSTER_PARENT_PID"))
	if err != nil {
		return
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "testcluster: prctl(PR_SET_PDEATHSIG): %v\n", errno)
		os.Exit(1)
	}
	// The parent may have died before prctl took effect.
	if os.Getppid() != parent {
		os.Exit(1)
	}
}

// runEtcd starts a single-member etcd with its data in dir, serving clients on the given URL,
// until SIGTERM or SIGINT. Usage: etcd <data-dir> <client-url> <peer-url>
func runEtcd(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: testcluster etcd <data-dir> <client-url> <peer-url>")
		return 2
	}
	clientURL, err := url.Parse(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: bad client url: %v\n", err)
		return 2
	}
	peerURL, err := url.Parse(args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: bad peer url: %v\n", err)
		return 2
	}
	cfg := embed.NewConfig()
	cfg.Dir = args[0]
	cfg.Name = "default"
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = "default=" + peerURL.String()
	cfg.LogLevel = "warn"
	// A test cluster's data is disposable: skip fsync so the control plane starts fast on a busy disk.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		return 1
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("etcd ready")
	case <-time.After(60 * time.Second):
		fmt.Fprintln(os.Stderr, "etcd: not ready after 60 s")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case <-ctx.Done():
		return 0
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		return 1
	}
}
