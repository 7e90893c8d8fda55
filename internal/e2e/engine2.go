package e2e

import (
	"testing"

	"github.com/docker/go-connections/nat"
)

const (
	// SecondEngineSocket is the API socket of the second engine.
	SecondEngineSocket = testHostRunDir + "/engine2/docker.sock"
	// SecondEngineHost is SecondEngineSocket as a DOCKER_HOST value.
	SecondEngineHost = "unix://" + SecondEngineSocket
)

// SecondEngine is a second Docker engine on this machine, beside the
// machine's own, for tests where an engine becomes unreachable: the test host
// (see TestHost) in the first slot, named engine2, in a network namespace of
// its own, so that it never touches the machine's engine (a dockerd in the
// machine's own namespace deletes the machine engine's default bridge docker0
// when it starts again on its roots). Its fields and methods are its
// TestHost's: Host (SecondEngineHost), Docker, Image, First, Stop, Kill,
// Start, Ping, Env and HostAddress.
//
// Each test that asks for it gets it to itself: RequireSecondEngine starts it
// (a few seconds, and the image load), holding the first slot's lock so test
// binaries running side by side take turns, and the test's cleanup removes
// everything made for it.
type SecondEngine struct {
	*TestHost
}

// RequireSecondEngine starts the second Docker engine for the test and
// returns it, with the image under test loaded, and the test's Env on the
// machine's engine (First) as Require gives it. Without PACSD_E2E=1 the test
// is skipped; with it, anything missing (root, dockerd, nsenter, the
// machine's engine or the image) fails the test. When the test ends,
// everything made for it is removed (see TestHost).
func RequireSecondEngine(t testing.TB) *SecondEngine {
	t.Helper()
	return &SecondEngine{TestHost: requireTestHost(t, 1, 1, "engine2")}
}

// portBindings publishes 5432 on every host address when asked, on a port the
// engine picks.
func (o NodeOptions) portBindings() nat.PortMap {
	if !o.Publish {
		return nil
	}
	return nat.PortMap{"5432/tcp": {{HostIP: "0.0.0.0"}}}
}

// HostPort returns the host port the engine published 5432 on (see
// NodeOptions.Publish), or fails the test when there is none.
func (n *Node) HostPort() string {
	n.env.T.Helper()
	c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
	if err != nil {
		n.fatal("inspecting", err)
	}
	if c.NetworkSettings != nil {
		for _, b := range c.NetworkSettings.Ports["5432/tcp"] {
			if b.HostPort != "" {
				return b.HostPort
			}
		}
	}
	n.env.T.Fatalf("node %s: port 5432 is not published", n.Name)
	return ""
}
