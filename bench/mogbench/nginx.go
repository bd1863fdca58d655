package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// nginxPorts are the reference server blocks: each one is a stack that mogway replaces.
type nginxPorts struct {
	Static int // (a) static files from a storage node's docroot: the ceiling
	Proxy  int // (b) proxy_pass to the storage nodes with proxy_next_upstream, uncached
	Cache  int // (c) the same with proxy_cache
	Upload int // (d) PUT proxied to storage node A, request body streamed (proxy_request_buffering off)
}

// writeNginxConf writes an nginx.conf for workers worker processes (pinned by the caller) into dir, which
// also holds its pid file, logs and temporary files, and returns its path. It is tuned as operators run
// nginx: sendfile, tcp_nopush, open_file_cache, long keep-alive on both sides. The upload server block
// proxies to upstreams[0] alone.
func writeNginxConf(dir, docroot string, upstreams []string, p nginxPorts, workers int) (string, error) {
	var ups strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&ups, "    server %s max_fails=1 fail_timeout=10s;\n", u)
	}
	conf := nginxHead(dir, workers, 4096) + fmt.Sprintf(`  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 60s;
  open_file_cache_errors on;
  proxy_cache_path %[1]s/ngx-cache levels=1:2 keys_zone=bench:16m max_size=4g inactive=1h use_temp_path=off;
  upstream storage {
%[2]s    keepalive 64;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:%[3]d;
    root %[4]s;
  }
  server {
    listen 127.0.0.1:%[5]d;
    location / {
      proxy_pass http://storage;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_connect_timeout 2s;
      proxy_read_timeout 10s;
      proxy_buffering on;
    }
  }
  server {
    listen 127.0.0.1:%[6]d;
    location / {
      proxy_pass http://storage;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_cache bench;
      proxy_cache_valid 200 12h;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
  server {
    listen 127.0.0.1:%[7]d;
    client_max_body_size 0;
    location / {
      proxy_pass http://%[8]s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_read_timeout 60s;
    }
  }
}
`, dir, ups.String(), p.Static, docroot, p.Proxy, p.Cache, p.Upload, upstreams[0])
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

// nginxHead is the start of every bench nginx.conf up to the open http block: workers worker
// processes of conns connections each, in the foreground, with the pid file, error log and
// temporary files under dir and no access log. The caller writes the rest of the http block and
// closes it.
func nginxHead(dir string, workers, conns int) string {
	return fmt.Sprintf(`worker_processes %[2]d;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections %[3]d; }
http {
  access_log off;
  client_body_temp_path %[1]s/ngx-body;
  proxy_temp_path %[1]s/ngx-proxy;
  fastcgi_temp_path %[1]s/ngx-fcgi;
  uwsgi_temp_path %[1]s/ngx-uwsgi;
  scgi_temp_path %[1]s/ngx-scgi;
`, dir, workers, conns)
}

// startNginx makes dir, writes conf to dir/nginx.conf and starts nginx on it as the process name
// on serverCPUs, then waits until every one of ports listens; it stops nginx if one does not.
func (c *cluster) startNginx(name, dir, conf string, ports ...int) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(c.work, name, serverCPUs, nil, "nginx", "-c", path, "-p", dir)
	if err != nil {
		return nil, err
	}
	for _, port := range ports {
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}
