package main

import (
	"gopkg.in/yaml.v3"

	"github.com/mogway/mogway/gateway"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker"
)

// File is the whole YAML configuration file: one section per role. A process validates only the
// sections of the roles it runs, so one file can serve every host of a cluster.
type File struct {
	Storaged storaged.Config `yaml:"storaged"`
	Tracker  tracker.Config  `yaml:"tracker"`
	Gateway  gateway.Config  `yaml:"gateway"`
}

// configFile is a decoded file plus what is needed to point at its lines later.
type configFile struct {
	File
	path string
	doc  *yaml.Node // nil without a file
}

// loadConfig decodes path strictly. An empty path gives an empty File (every default).
func loadConfig(path string) (*configFile, error) {
	cf := &configFile{path: path}
	if path == "" {
		return cf, nil
	}
	doc, err := conf.Load(path, &cf.File)
	if err != nil {
		return nil, err
	}
	cf.doc = doc
	return cf, nil
}

// validate checks one section (after flags were applied) and locates errors in the file.
func (cf *configFile) validate(section string, v conf.Validator) error {
	err := conf.Within(section, v.Validate())
	if err == nil {
		return nil
	}
	name := cf.path
	if name == "" {
		name = "(flags)"
	}
	return conf.Locate(name, cf.doc, err)
}
