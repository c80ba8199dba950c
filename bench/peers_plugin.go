package bench

import (
	"net/rpc"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// pluginHandshake is the go-plugin handshake shared by the host and the
// plugin (this binary re-executed).
var pluginHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "APLEX_BENCH_PLUGIN",
	MagicCookieValue: "echo",
}

// Echoer is the plugin's interface: a no-op call, the go-plugin row of the
// process round trip.
type Echoer interface {
	Echo(x int) (int, error)
}

// echoServer is the plugin side, served over net/rpc.
type echoServer struct{}

// Echo returns x in *reply.
func (echoServer) Echo(x int, reply *int) error { *reply = x; return nil }

// echoClient is the host side proxy.
type echoClient struct{ c *rpc.Client }

func (e echoClient) Echo(x int) (int, error) {
	var reply int
	err := e.c.Call("Plugin.Echo", x, &reply)
	return reply, err
}

// echoPlugin is the go-plugin net/rpc plugin definition.
type echoPlugin struct{}

func (echoPlugin) Server(*plugin.MuxBroker) (any, error) { return echoServer{}, nil }

func (echoPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return echoClient{c}, nil
}

var pluginSet = plugin.PluginSet{"echo": echoPlugin{}}

// servePlugin is the plugin child.
func servePlugin() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginHandshake,
		Plugins:         pluginSet,
		Logger:          hclog.NewNullLogger(),
	})
}

// PluginPeer is a started go-plugin client with its dispensed Echoer.
type PluginPeer struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	Echoer Echoer
}

// StartPlugin starts the plugin child over net/rpc and dispenses its Echoer.
func StartPlugin() (*PluginPeer, error) {
	cmd, err := selfCommand(rolePlugin)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = nil // go-plugin forwards the child's stderr itself
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginHandshake,
		Plugins:          pluginSet,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		Logger:           hclog.NewNullLogger(),
	})
	rc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	raw, err := rc.Dispense("echo")
	if err != nil {
		client.Kill()
		return nil, err
	}
	return &PluginPeer{client: client, rpc: rc, Echoer: raw.(Echoer)}, nil
}

// Calls makes n calls from inflight goroutines at once.
func (p *PluginPeer) Calls(n, inflight int) error {
	var wg sync.WaitGroup
	errs := make([]error, inflight)
	for g := range inflight {
		wg.Go(func() {
			for i := g; i < n; i += inflight {
				if _, err := p.Echoer.Echo(i); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Close asks the plugin to quit, then waits for it (killing it if it
// lingers).
func (p *PluginPeer) Close() {
	_ = p.rpc.Close()
	p.client.Kill()
}
