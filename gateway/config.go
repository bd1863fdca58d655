package gateway

// Config is the `gateway:` section of the mogway YAML file. The zero value means every default.
type Config struct{}

// Validate checks the section; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error { return nil }
