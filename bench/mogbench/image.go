package main

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
)

// The image rows: a 2000×1500 JPEG (about 0.8 MB, photo-like noise) on storage node A is resized to
// 200 px wide. mogway: a gateway with an upstream route to node A and image variants on, the variant
// cache off (every request transforms) on gwImage, on (every request after the first is a hit) on
// gwImageCache. Reference: Debian's nginx with libnginx-mod-http-image-filter, `image_filter resize
// 200 -` behind proxy_pass to node A, and the same behind proxy_cache in the same worker.
const (
	gwImage       = 18087
	gwImageCache  = 18088
	ngxImage      = 18101
	ngxImageCache = 18102
	imagePath     = "/dev1/img/src.jpg"
	imageModule   = "/usr/lib/nginx/modules/ngx_http_image_filter_module.so"
	imageConns    = 4 // each transform takes tens of ms of one core: a few connections keep it busy
)

// imageJPEG is the test source: a gradient with pseudo-random noise, so it compresses like a photo.
func imageJPEG() ([]byte, error) {
	const w, h = 2000, 1500
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	seed := uint32(1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			img.Y[y*img.YStride+x] = uint8(x*255/w/2 + y*255/h/2 + int(seed>>28))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = uint8(100+i%50), uint8(140-i%40)
	}
	var b bytes.Buffer
	err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85})
	return b.Bytes(), err
}

// startImage puts the source on node A and starts the two image gateways and the image_filter nginx.
// They are kept in c.gateways (by port) so that cluster.stop stops them.
func (c *cluster) startImage() error {
	if _, ok := c.gateways[gwImage]; ok {
		return nil
	}
	src, err := imageJPEG()
	if err != nil {
		return err
	}
	file := filepath.Join(c.work, "node1", imagePath)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(file, src, 0o644); err != nil {
		return err
	}
	for port, cache := range map[int]string{gwImage: "", gwImageCache: "  cache:\n    memory: 256MiB\n"} {
		yaml := fmt.Sprintf("gateway:\n  listen: 127.0.0.1:%d\n  access_log: \"off\"\n%s  routes:\n    - prefix: /dev1/\n"+
			"      servers: [{addr: %q}]\n      image: {max_source_size: 4MiB, concurrency: 1}\n", port, cache, nodeA)
		if err := c.startGateway(port, yaml, serverCPUs, nil); err != nil {
			return err
		}
	}
	dir := filepath.Join(c.work, "ngx-image")
	conf := "load_module " + imageModule + ";\n" + nginxHead(dir, 1, 1024) + fmt.Sprintf(`  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=img:16m max_size=1g inactive=1h use_temp_path=off;
  upstream node { server %[2]s; keepalive 16; }
  server {
    listen 127.0.0.1:%[3]d;
    location /dev1/ {
      proxy_pass http://node;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      image_filter resize 200 -;
      image_filter_buffer 4M;
      image_filter_jpeg_quality 75;
    }
  }
  server {
    listen 127.0.0.1:%[4]d;
    location /dev1/ {
      proxy_pass http://127.0.0.1:%[3]d;
      proxy_cache img;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`, dir, nodeA, ngxImage, ngxImageCache)
	p, err := c.startNginx("nginx-image", dir, conf, ngxImage, ngxImageCache)
	if err != nil {
		return err
	}
	c.gateways[ngxImage] = p
	return nil
}

// imageRow compares the transform (cached false) or the cached variant (cached true).
func (c *cluster) imageRow(cached bool) (row, error) {
	if err := c.startImage(); err != nil {
		return row{}, err
	}
	ic := *c
	ic.o.conns = imageConns
	mogPort, ngxPort, name, ref := gwImage, ngxImage, "image resize 2000×1500 JPEG to 200 px wide, every request transforms", "nginx image_filter"
	if cached {
		mogPort, ngxPort, name, ref = gwImageCache, ngxImageCache, "image variant 200 px wide, cached", "nginx image_filter + proxy_cache"
	}
	return ic.ab(abRun{name: name, mogURL: localURL(mogPort, imagePath+"?w=200"), refURL: localURL(ngxPort, imagePath),
		refName: ref, mog: c.mogSide(c.gateways[mogPort]), ref: c.refSide(c.gateways[ngxImage]), pprof: pprofAddr(mogPort)})
}
