package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The lookup rows measure what the miss-path rows without a path cache cannot: a peer that asks the
// tracker too. nginx_mogilefs_module, the nginx side of the stack mogway replaces, is not packaged
// by Debian, so the peer is Debian's nginx with its Lua module (libnginx-mod-http-lua): for each
// request it sends `get_paths` on a kept tracker connection (a cosocket pool), takes the first path
// of the answer, as the module does, and proxies the request to that storage node through an
// upstream block of the node with kept connections. The same tracker (verification on, as on the
// gateway's route), the same nodes and the same URIs serve both sides.
const (
	ngxLookup     = 18103
	ndkModule     = "/usr/lib/nginx/modules/ndk_http_module.so"
	luaModule     = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
	lookupRefName = "nginx + Lua get_paths every request"
)

// lookupNginxConf is the nginx.conf of the lookup peer: one worker serving port, the domain's prefix
// looked up on tracker, nodes the storage nodes' addresses as get_paths names them.
func lookupNginxConf(dir string, port int, tracker string, nodes []string) (string, error) {
	host, trackerPort, ok := strings.Cut(tracker, ":")
	if !ok {
		return "", fmt.Errorf("tracker address %q has no port", tracker)
	}
	var upstreams, table strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&upstreams, "  upstream node%d { server %s; keepalive 64; keepalive_requests 100000; }\n", i, n)
		fmt.Fprintf(&table, "      [%q] = \"node%d\",\n", n, i)
	}
	return "load_module " + ndkModule + ";\nload_module " + luaModule + ";\n" + nginxHead(dir, 1, 4096) + fmt.Sprintf(`  keepalive_requests 100000;
  lua_package_path "/usr/share/lua/5.1/?.lua;;";
  init_by_lua_block {
    -- a storage node's address, as get_paths names it, and the upstream block that keeps connections to it
    nodes = {
%[1]s    }
  }
%[2]s  server {
    listen 127.0.0.1:%[3]d;
    location /%[4]s/ {
      set $node "";
      set $fid "";
      access_by_lua_block {
        local sock = ngx.socket.tcp()
        sock:settimeouts(2000, 2000, 2000)
        local ok = sock:connect(%[5]q, %[6]s)
        if not ok then return ngx.exit(502) end
        local key = ngx.escape_uri(string.sub(ngx.var.uri, %[7]d))
        local _, err = sock:send("get_paths domain=%[4]s&key=" .. key .. "\r\n")
        if err then sock:close(); return ngx.exit(502) end
        local line = sock:receive("*l")
        if not line then sock:close(); return ngx.exit(502) end
        sock:setkeepalive(60000, 64)
        if string.sub(line, 1, 3) ~= "OK " then
          if string.find(line, "unknown_key", 1, true) then return ngx.exit(404) end
          return ngx.exit(502)
        end
        local args = ngx.decode_args(string.sub(line, 4), 0)
        local addr, uri = string.match(args.path1 or "", "^http://([^/]+)(/.*)$")
        local node = addr and nodes[addr]
        if not node then return ngx.exit(502) end
        ngx.var.node = node
        ngx.var.fid = uri
      }
      proxy_pass http://$node$fid;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504;
    }
  }
}
`, table.String(), upstreams.String(), port, domain, host, trackerPort, len("/"+domain+"/")+1), nil
}

// startLookupNginx starts the lookup peer once; it is kept in c.gateways (by port) so that
// cluster.stop stops it.
func (c *cluster) startLookupNginx() (*proc, error) {
	if p, ok := c.gateways[ngxLookup]; ok {
		return p, nil
	}
	dir := filepath.Join(c.work, "ngx-lookup")
	conf, err := lookupNginxConf(dir, ngxLookup, trackerAddr, []string{nodeA, nodeB})
	if err != nil {
		return nil, err
	}
	p, err := c.startNginx("nginx-lookup", dir, conf, ngxLookup)
	if err != nil {
		return nil, err
	}
	c.gateways[ngxLookup] = p
	return p, nil
}

// lookupRow compares the path-cache-off gateway with the lookup peer, both asking the tracker for
// every request: on the one 4 KiB key, or with distinct over the distinct objects in the same
// spread order on both sides.
func (c *cluster) lookupRow(distinct bool) (row, error) {
	ng, err := c.startLookupNginx()
	if err != nil {
		return row{}, err
	}
	a := abRun{name: "miss path 4 KiB, tracker get_paths every request, against nginx asking the tracker",
		mogURL: localURL(gwNoPathCache, "/"+domain+"/4k"), refURL: localURL(ngxLookup, "/"+domain+"/4k"),
		refName: lookupRefName, mog: c.mogSide(c.gateways[gwNoPathCache]), ref: c.mogSide(ng),
		pprof: pprofAddr(gwNoPathCache), lookups: [2]bool{true, true}}
	if distinct {
		paths, _, err := c.distinctPaths()
		if err != nil {
			return row{}, err
		}
		a.name = "miss path 4 KiB, 256 distinct keys, against nginx asking the tracker"
		a.mogURL, a.refURL = localURL(gwNoPathCache, paths[0]), localURL(ngxLookup, paths[0])
		a.paths = [2][]string{paths, paths}
	}
	return c.ab(a)
}
